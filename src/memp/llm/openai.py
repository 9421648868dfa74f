"""OpenAI-compatible chat backend (official ``openai`` SDK).

One client for OpenAI and every server speaking its API: vLLM, Ollama, LM Studio,
llama.cpp's server. The SDK retries connection errors, 408/409/429 and 5xx with
exponential backoff (honouring Retry-After); memp sets the timeout and the retry count
and turns the SDK's exceptions into errors that say which URL failed and what to check.

``choices``: ``choice_mode="nearest"`` (default) maps the free answer onto the closest
choice; ``"grammar"`` sends a GBNF grammar (llama.cpp server); ``"guided"`` sends
vLLM's ``guided_choice``.
"""

from __future__ import annotations

import os
from typing import Any

from memp.errors import BackendError, UnknownOption
from memp.llm.backend import LLMBackend
from memp.llm.base import Completion, Message
from memp.llm.cache import CompletionCache
from memp.llm.choices import choices_gbnf, nearest_choice

OPENAI_URL = "https://api.openai.com/v1"
CHOICE_MODES = ("nearest", "grammar", "guided")


def _openai_errors() -> Any:
    import openai

    return openai


def explain_openai_error(e: Exception, url: str, model: str) -> BackendError:
    """A BackendError naming the URL and what to check, for an ``openai`` SDK exception."""
    openai = _openai_errors()
    if isinstance(e, openai.APITimeoutError):
        return BackendError(
            f"the endpoint {url} did not answer in time (model {model!r}): check that the "
            f"server is up and not overloaded, or raise the timeout"
        )
    if isinstance(e, openai.APIConnectionError):
        return BackendError(
            f"cannot reach the OpenAI-compatible endpoint {url}: check that the server is "
            f"running, that the URL (scheme, host, port, /v1) is right and that nothing "
            f"blocks the connection ({e.__cause__ or e})"
        )
    if isinstance(e, openai.AuthenticationError):
        return BackendError(
            f"{url} rejected the API key (401): check OPENAI_API_KEY (or the api_key option)"
        )
    if isinstance(e, openai.PermissionDeniedError):
        return BackendError(
            f"{url} denied access to model {model!r} (403): check the key's permissions"
        )
    if isinstance(e, openai.NotFoundError):
        return BackendError(
            f"{url} has no model {model!r} (404): check the model name (for Ollama, "
            f"`ollama pull {model}`), or the base URL"
        )
    if isinstance(e, openai.RateLimitError):
        return BackendError(
            f"{url} kept rate-limiting (429) after all retries: slow down or raise max_retries"
        )
    if isinstance(e, openai.APIStatusError):
        return BackendError(f"{url} answered HTTP {e.status_code} for model {model!r}: {e.message}")
    return BackendError(f"call to {url} failed: {e}")


def provider_key(api_key: str | None = None) -> str | None:
    """The key sent to an OpenAI-compatible provider: the explicit one, else
    OPENAI_API_KEY. Never MEMP_API_KEY: that one authenticates to the memp service, and
    a provider (possibly a third party) must not receive it."""
    return api_key or os.environ.get("OPENAI_API_KEY") or None


class OpenAILLM(LLMBackend):
    """A chat model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        name: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        choice_mode: str = "nearest",
        cache: CompletionCache | None = None,
        cache_sampled: bool = False,
    ) -> None:
        super().__init__(cache=cache, cache_sampled=cache_sampled)
        try:
            import openai
        except ImportError as e:  # pragma: no cover - a core dependency
            from memp.errors import MissingDependency

            raise MissingDependency("openai") from e
        if choice_mode not in CHOICE_MODES:
            raise UnknownOption("choice mode", choice_mode, CHOICE_MODES)
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        self.choice_mode = choice_mode
        self.name = name or f"openai:{model}"
        hosted = self.base_url == OPENAI_URL
        key = provider_key(api_key)
        if not key:
            if hosted:
                raise BackendError(
                    "OPENAI_API_KEY is not set: export it, or choose another backend, "
                    "e.g. --llm local"
                )
            key = "not-needed"  # local servers ignore it, the SDK insists on one
        self._client = openai.OpenAI(
            api_key=key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )

    @property
    def identity(self) -> str:
        return f"{self.base_url}#{self.model}"

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
        openai = _openai_errors()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if stop:
            kwargs["stop"] = stop
        if seed is not None:
            kwargs["seed"] = seed
        if choices and self.choice_mode == "grammar":
            kwargs["extra_body"] = {"grammar": choices_gbnf(choices)}
        elif choices and self.choice_mode == "guided":
            kwargs["extra_body"] = {"guided_choice": choices}
        try:
            resp = self._client.chat.completions.create(**kwargs)
        except openai.OpenAIError as e:
            raise explain_openai_error(e, self.base_url, self.model) from e
        if not resp.choices:
            raise BackendError(f"{self.base_url} returned no choices for model {self.model!r}")
        text = resp.choices[0].message.content or ""
        if choices:
            text = nearest_choice(text, choices)
        usage = resp.usage
        return Completion(
            text=text,
            prompt_tokens=int(usage.prompt_tokens) if usage else 0,
            completion_tokens=int(usage.completion_tokens) if usage else 0,
            model=self.name,
        )
