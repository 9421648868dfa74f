"""A scripted LLM for tests of memory logic: answers come from a list or a function.

Never the thing a model-dependent feature is demonstrated with; it exists so that
build/update logic can be tested deterministically and fast.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from memp.errors import BackendError
from memp.llm.backend import LLMBackend, Request, cut_at_stop
from memp.llm.base import Completion, Message
from memp.llm.plugins import Spec
from memp.tokens import count_tokens

Responder = Callable[[Sequence[Message]], str]


class ScriptedLLM(LLMBackend):
    """Answers from ``responses`` in order (a list) or by calling ``responses(messages)``.

    Every call is kept in ``calls`` (the messages it was given) so tests can assert on
    the prompts. Stop strings cut the answer; with ``choices``, an answer that is not
    one of them is mapped to the closest choice, like API backends without grammars do.
    """

    def __init__(self, responses: Sequence[str] | Responder, *, name: str = "scripted") -> None:
        super().__init__()
        self.name = name
        self._fn: Responder | None = responses if callable(responses) else None
        self._queue: list[str] = [] if callable(responses) else list(responses)
        self.calls: list[list[Message]] = []

    @classmethod
    def from_spec(cls, spec: Spec, cache: None = None) -> ScriptedLLM:
        """``scripted`` / ``scripted:<label>``: answers "" (so, with choices, a choice)."""
        return cls(lambda _messages: "", name=spec.text)

    def _generate(self, request: Request) -> Completion:
        messages = request.messages
        self.calls.append(list(messages))
        if self._fn is not None:
            text = self._fn(messages)
        elif self._queue:
            text = self._queue.pop(0)
        else:
            raise BackendError(
                f"ScriptedLLM ran out of answers after {len(self.calls) - 1} calls; "
                "give it more responses or a function"
            )
        text = self.chosen(cut_at_stop(text, request.stop), request)
        prompt = "\n".join(m["content"] for m in messages)
        return Completion(
            text=text,
            prompt_tokens=count_tokens(prompt),
            completion_tokens=count_tokens(text),
            model=self.name,
        )

    def map_choice(self, text: str, choices: list[str]) -> str:
        close = difflib.get_close_matches(text, choices, n=1, cutoff=0.0)
        return close[0] if close else choices[0]
