"""A scripted LLM for tests of memory logic: answers come from a list or a function.

Never the thing a model-dependent feature is demonstrated with; it exists so that
build/update logic can be tested deterministically and fast.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from memp.errors import BackendError
from memp.llm.base import Completion, Message
from memp.tokens import count_tokens

Responder = Callable[[Sequence[Message]], str]


class ScriptedLLM:
    """Answers from ``responses`` in order (a list) or by calling ``responses(messages)``.

    Every call is kept in ``calls`` (the messages it was given) so tests can assert on
    the prompts. With ``choices``, an answer that is not one of them is mapped to the
    closest choice, like API backends without grammars do.
    """

    def __init__(self, responses: Sequence[str] | Responder, *, name: str = "scripted") -> None:
        self.name = name
        self._fn: Responder | None = responses if callable(responses) else None
        self._queue: list[str] = [] if callable(responses) else list(responses)
        self.calls: list[list[Message]] = []

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        choices: Sequence[str] | None = None,
    ) -> Completion:
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
        if stop:
            for s in stop:
                if s and s in text:
                    text = text[: text.index(s)]
        if choices and text not in choices:
            close = difflib.get_close_matches(text, list(choices), n=1, cutoff=0.0)
            text = close[0] if close else choices[0]
        prompt = "\n".join(m["content"] for m in messages)
        return Completion(
            text=text,
            prompt_tokens=count_tokens(prompt),
            completion_tokens=count_tokens(text),
            model=self.name,
        )
