"""What every LLM backend shares: input checks, stop handling, choice mapping, the
completion cache and the usage ledger.

A backend implements ``_generate(request)`` (passing its answer through ``chosen``);
``complete`` (the LLM protocol) wraps it so that all of this behaves the same for llama.cpp, OpenAI-compatible servers,
Anthropic and the scripted test double.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memp.errors import InvalidInput
from memp.llm.base import Completion, Message
from memp.llm.cache import CompletionCache, cache_key
from memp.llm.choices import nearest_choice
from memp.llm.ledger import CallRecord, record_call

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from memp.llm.base import CallOptions

_ROLES = {"system", "user", "assistant"}


def check_messages(messages: Sequence[Message]) -> list[Message]:
    if isinstance(messages, str) or not messages:
        raise InvalidInput(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts, "
            "e.g. [{'role': 'user', 'content': 'hello'}]"
        )
    out: list[Message] = []
    for i, m in enumerate(messages):
        if (
            not isinstance(m, dict)
            or m.get("role") not in _ROLES
            or not isinstance(m.get("content"), str)
        ):
            raise InvalidInput(
                f"message {i} must be a dict with role in {sorted(_ROLES)} and a string "
                f"content; got {m!r}"
            )
        out.append({"role": m["role"], "content": m["content"]})
    return out


def check_choices(choices: Sequence[str] | None) -> list[str] | None:
    if choices is None:
        return None
    if isinstance(choices, str):
        raise InvalidInput("choices must be a list of strings, not a single string")
    uniq = list(dict.fromkeys(choices))
    if not uniq or any(not isinstance(c, str) or not c for c in uniq):
        raise InvalidInput("choices must be a non-empty list of non-empty strings")
    return uniq


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first stop string, for backends that cannot stop by themselves."""
    ends = [text.index(s) for s in stop if s in text]
    return text[: min(ends)] if ends else text


@dataclass(frozen=True)
class Request:
    """One checked call: what a backend generates from and what the cache key covers."""

    messages: list[Message]
    max_tokens: int
    temperature: float
    stop: list[str]
    seed: int | None
    choices: list[str] | None

    @classmethod
    def build(
        cls,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
        choices: Sequence[str] | None = None,
    ) -> Request:
        msgs, opts = check_messages(messages), check_choices(choices)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if max_tokens < 1:
            raise InvalidInput(f"max_tokens must be >= 1, got {max_tokens}")
        if temperature < 0:
            raise InvalidInput(f"temperature must be >= 0, got {temperature}")
        return cls(msgs, max_tokens, temperature, [s for s in stops if s], seed, opts)

    def params(self) -> dict[str, Any]:
        """Every decoding parameter, as the completion cache keys them."""
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": self.stop,
            "seed": self.seed,
            "choices": self.choices,
        }


class LLMBackend:
    """Base class of memp's LLM backends (implements the LLM protocol)."""

    name: str = "llm"

    def __init__(
        self, *, cache: CompletionCache | None = None, cache_sampled: bool = False
    ) -> None:
        self.cache = cache
        self.cache_sampled = cache_sampled
        # Set by backends that reuse a KV cache: the prompt tokens really evaluated.
        self.last_prompt_tokens_evaluated: int | None = None

    # Part of the cache key: what identifies the weights, not just a display name.
    @property
    def identity(self) -> str:
        return self.name

    def _generate(self, request: Request) -> Completion:
        raise NotImplementedError

    def map_choice(self, text: str, choices: list[str]) -> str:
        """The choice a free answer meant (backends that cannot constrain decoding)."""
        return nearest_choice(text, choices)

    def chosen(self, text: str, request: Request) -> str:
        """The answer, mapped onto a choice when the request has choices and it is none."""
        if request.choices and text not in request.choices:
            return self.map_choice(text, request.choices)
        return text

    def complete(self, messages: Sequence[Message], **options: Unpack[CallOptions]) -> Completion:
        request = Request.build(messages, **options)
        use_cache = self.cache is not None and (request.temperature == 0 or self.cache_sampled)
        key = cache_key(self.identity, request.messages, request.params()) if use_cache else ""
        t0 = time.perf_counter()
        if use_cache and (hit := self.cache.get(key)) is not None:  # type: ignore[union-attr]
            hit = hit.model_copy(update={"latency_s": time.perf_counter() - t0})
            _record(hit, evaluated=0)
            return hit
        self.last_prompt_tokens_evaluated = None
        t0 = time.perf_counter()
        out = self._generate(request)
        if not out.latency_s:
            out = out.model_copy(update={"latency_s": time.perf_counter() - t0})
        _record(out, evaluated=self.last_prompt_tokens_evaluated)
        if use_cache:
            self.cache.put(key, out)  # type: ignore[union-attr]
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _record(out: Completion, *, evaluated: int | None) -> None:
    record_call(
        CallRecord(
            model=out.model,
            prompt_tokens=out.prompt_tokens,
            completion_tokens=out.completion_tokens,
            latency_s=out.latency_s,
            cached=out.cached,
            prompt_tokens_evaluated=evaluated,
        )
    )
