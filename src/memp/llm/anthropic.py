"""Anthropic backend (official ``anthropic`` SDK, Messages API).

System messages go into the ``system`` field; consecutive turns of the same role are
joined, since the API wants user/assistant alternation starting with a user turn. The
SDK retries connection errors, 408/409/429 and 5xx with exponential backoff.
``choices`` are mapped onto the closest choice (the API has no grammars).

The current Messages API (and SDK) has no ``temperature``/``seed`` fields, so they are
not sent; ``send_temperature=True`` sends ``temperature`` in the body for servers and
older models that still take it.
"""

from __future__ import annotations

import os
from typing import Any

from memp.errors import BackendError, MissingDependency
from memp.llm.backend import LLMBackend
from memp.llm.base import Completion, Message
from memp.llm.cache import CompletionCache
from memp.llm.choices import nearest_choice

ANTHROPIC_URL = "https://api.anthropic.com"


def to_anthropic(messages: list[Message]) -> tuple[str, list[dict[str, str]]]:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns: list[dict[str, str]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if turns and turns[-1]["role"] == m["role"]:
            turns[-1]["content"] += "\n\n" + m["content"]
        else:
            turns.append({"role": m["role"], "content": m["content"]})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": "(start)"})
    return system, turns


class AnthropicLLM(LLMBackend):
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        name: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        send_temperature: bool = False,
        cache: CompletionCache | None = None,
        cache_sampled: bool = False,
    ) -> None:
        super().__init__(cache=cache, cache_sampled=cache_sampled)
        self.send_temperature = send_temperature
        try:
            import anthropic
        except ImportError as e:  # pragma: no cover - a core dependency
            raise MissingDependency("anthropic") from e
        self.model = model
        self.name = name or f"anthropic:{model}"
        self.base_url = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL).rstrip(
            "/"
        )
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise BackendError(
                "ANTHROPIC_API_KEY is not set: export it, or choose another backend, "
                "e.g. --llm local"
            )
        self._client = anthropic.Anthropic(
            api_key=key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )

    @property
    def identity(self) -> str:
        return f"{self.base_url}#{self.model}"

    def _explain(self, e: Exception) -> BackendError:
        import anthropic

        url = self.base_url
        if isinstance(e, anthropic.APITimeoutError):
            return BackendError(
                f"the Anthropic endpoint {url} did not answer in time: retry later or raise the timeout"
            )
        if isinstance(e, anthropic.APIConnectionError):
            return BackendError(
                f"cannot reach the Anthropic endpoint {url}: check the network, the URL "
                f"(ANTHROPIC_BASE_URL) and any proxy ({e.__cause__ or e})"
            )
        if isinstance(e, anthropic.AuthenticationError):
            return BackendError(f"{url} rejected the API key (401): check ANTHROPIC_API_KEY")
        if isinstance(e, anthropic.NotFoundError):
            return BackendError(f"{url} has no model {self.model!r} (404): check the model name")
        if isinstance(e, anthropic.RateLimitError):
            return BackendError(
                f"{url} kept rate-limiting (429) after all retries: slow down or raise max_retries"
            )
        if isinstance(e, anthropic.APIStatusError):
            return BackendError(
                f"{url} answered HTTP {e.status_code} for model {self.model!r}: {e.message}"
            )
        return BackendError(f"call to {url} failed: {e}")

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
        import anthropic

        system, turns = to_anthropic(messages)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "messages": turns,
        }
        if self.send_temperature:
            kwargs["extra_body"] = {"temperature": temperature}
        if system:
            kwargs["system"] = system
        if stop:
            kwargs["stop_sequences"] = stop
        try:
            resp = self._client.messages.create(**kwargs)
        except anthropic.AnthropicError as e:
            raise self._explain(e) from e
        text = "".join(getattr(b, "text", "") for b in resp.content if b.type == "text")
        if choices:
            text = nearest_choice(text, choices)
        return Completion(
            text=text,
            prompt_tokens=int(resp.usage.input_tokens),
            completion_tokens=int(resp.usage.output_tokens),
            model=self.name,
        )
