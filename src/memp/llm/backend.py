"""What every real LLM backend shares: input checks, the completion cache, the ledger.

A backend implements ``_generate``; ``complete`` (the LLM protocol) wraps it so that
caching and usage accounting behave the same for llama.cpp, OpenAI-compatible servers
and Anthropic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from memp.errors import InvalidInput
from memp.llm.base import Completion, Message
from memp.llm.cache import CompletionCache, cache_key
from memp.llm.ledger import CallRecord, record_call

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


class LLMBackend:
    """Base class of memp's LLM backends (implements the LLM protocol)."""

    name: str = "llm"

    def __init__(
        self, *, cache: CompletionCache | None = None, cache_sampled: bool = False
    ) -> None:
        self.cache = cache
        self.cache_sampled = cache_sampled
        self.last_prompt_tokens_evaluated: int | None = None

    # Part of the cache key: what identifies the weights, not just a display name.
    @property
    def identity(self) -> str:
        return self.name

    def _generate(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str],
        seed: int | None,
        choices: list[str] | None,
    ) -> Completion:
        raise NotImplementedError

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
        msgs = check_messages(messages)
        opts = check_choices(choices)
        if isinstance(stop, str):
            stop = [stop]
        stop_list = [s for s in (stop or []) if s]
        if max_tokens < 1:
            raise InvalidInput(f"max_tokens must be >= 1, got {max_tokens}")
        if temperature < 0:
            raise InvalidInput(f"temperature must be >= 0, got {temperature}")
        params: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stop": stop_list,
            "seed": seed,
            "choices": opts,
        }
        use_cache = self.cache is not None and (temperature == 0 or self.cache_sampled)
        key = cache_key(self.identity, msgs, params) if use_cache else ""
        if use_cache:
            t0 = time.perf_counter()
            hit = self.cache.get(key)  # type: ignore[union-attr]
            if hit is not None:
                hit = hit.model_copy(update={"latency_s": time.perf_counter() - t0})
                record_call(
                    CallRecord(
                        model=hit.model,
                        prompt_tokens=hit.prompt_tokens,
                        completion_tokens=hit.completion_tokens,
                        latency_s=hit.latency_s,
                        cached=True,
                        prompt_tokens_evaluated=0,
                    )
                )
                return hit
        self.last_prompt_tokens_evaluated = None
        t0 = time.perf_counter()
        out = self._generate(
            msgs,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop_list,
            seed=seed,
            choices=opts,
        )
        if not out.latency_s:
            out = out.model_copy(update={"latency_s": time.perf_counter() - t0})
        record_call(
            CallRecord(
                model=out.model,
                prompt_tokens=out.prompt_tokens,
                completion_tokens=out.completion_tokens,
                latency_s=out.latency_s,
                prompt_tokens_evaluated=self.last_prompt_tokens_evaluated,
            )
        )
        if use_cache:
            self.cache.put(key, out)  # type: ignore[union-attr]
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
