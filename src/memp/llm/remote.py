"""What every backend behind a provider SDK shares: one model at one URL.

The official ``openai`` and ``anthropic`` SDKs retry connection errors, 408/409/429 and
5xx with exponential backoff (honouring Retry-After); memp sets the timeout and the
retry count, picks the base URL and the key, and turns the SDK's exceptions into errors
that say which URL failed and what to check. Both SDKs share one exception hierarchy,
so one table explains both.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar

from memp.errors import BackendError, MissingDependency
from memp.llm.backend import LLMBackend
from memp.llm.cache import CompletionCache
from memp.llm.plugins import Spec

if TYPE_CHECKING:
    from typing_extensions import Unpack

R = TypeVar("R")


class EndpointOptions(TypedDict, total=False):
    base_url: str | None
    api_key: str | None
    timeout: float
    max_retries: int


@dataclass(frozen=True)
class Provider:
    label: str  # "the {label} endpoint"
    sdk: str  # import name of the SDK; its client class is sdk.<client>
    client: str  # its exceptions derive from sdk.<client>Error
    env: str  # prefix of the <env>_BASE_URL and <env>_API_KEY variables
    default_url: str
    connect_hint: str  # what to check when the URL cannot be reached
    key_option: str = ""  # how else a key can be given, for the 401 hint
    not_found_hint: str = ""  # may name {model}
    # Sent to self-hosted servers when no key is set (the SDK insists on one); None:
    # every URL needs a real key.
    placeholder_key: str | None = None

    def var(self, what: str) -> str:
        """The provider's environment variable ``<env>_<what>`` (BASE_URL, API_KEY).

        Never MEMP_API_KEY: that one authenticates to the memp service, and a provider
        (possibly a third party) must not receive it.
        """
        return f"{self.env}_{what}"

    def import_sdk(self) -> Any:
        try:
            return importlib.import_module(self.sdk)
        except ImportError as e:  # pragma: no cover - a core dependency
            raise MissingDependency(self.sdk) from e

    def explain(self, e: Exception, url: str, model: str) -> BackendError:
        """A BackendError naming the URL and what to check, for an SDK exception."""
        sdk = self.import_sdk()
        why = e.__cause__ or e
        code = getattr(e, "status_code", None)
        status_message = getattr(e, "message", "")
        # Most specific first: a timeout is a connection error too.
        for cls, text in (
            ("APITimeoutError", f"the {self.label} endpoint {url} did not answer in time (model "
             f"{model!r}): check that the server is up and not overloaded, or raise the timeout"),
            ("APIConnectionError", f"cannot reach the {self.label} endpoint {url}: "
             f"{self.connect_hint} ({why})"),
            ("AuthenticationError", f"{url} rejected the API key (401): check "
             f"{self.var('API_KEY')}{self.key_option}"),
            ("PermissionDeniedError", f"{url} denied access to model {model!r} (403): check "
             "the key's permissions"),
            ("NotFoundError", f"{url} has no model {model!r} (404): check the model name"
             + self.not_found_hint.format(model=model)),
            ("RateLimitError", f"{url} kept rate-limiting (429) after all retries: slow down "
             "or raise max_retries"),
            ("APIStatusError", f"{url} answered HTTP {code} for model {model!r}: {status_message}"),
        ):  # fmt: skip
            if isinstance(e, getattr(sdk, cls)):
                return BackendError(text)
        return BackendError(f"call to {url} failed: {e}")


OPENAI = Provider(
    "OpenAI-compatible",
    "openai",
    "OpenAI",
    "OPENAI",
    "https://api.openai.com/v1",
    "check that the server is running, that the URL (scheme, host, port, /v1) is right "
    "and that nothing blocks the connection",
    key_option=" (or the api_key option)",
    not_found_hint=" (for Ollama, `ollama pull {model}`), or the base URL",
    placeholder_key="not-needed",
)
ANTHROPIC = Provider(
    "Anthropic",
    "anthropic",
    "Anthropic",
    "ANTHROPIC",
    "https://api.anthropic.com",
    "check the network, the URL (ANTHROPIC_BASE_URL) and any proxy",
)


class Endpoint:
    """A provider's SDK client for one model at one base URL."""

    def __init__(
        self,
        provider: Provider,
        model: str,
        *,
        otherwise: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
    ) -> None:
        """``otherwise``: what to do instead when the key is missing ("use --embedder local")."""
        sdk = provider.import_sdk()
        self.provider = provider
        self.model = model
        self.base_url = (
            base_url or os.environ.get(provider.var("BASE_URL")) or provider.default_url
        ).rstrip("/")
        key_var = provider.var("API_KEY")
        key = api_key or os.environ.get(key_var)
        if not key:
            if provider.placeholder_key is None or self.hosted:
                raise BackendError(f"{key_var} is not set: export it, or {otherwise}")
            key = provider.placeholder_key
        self.client = getattr(sdk, provider.client)(
            api_key=key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )

    @property
    def hosted(self) -> bool:
        return self.base_url == self.provider.default_url

    def call(self, method: Callable[..., R], /, **kwargs: Any) -> R:
        """``method(**kwargs)`` (an SDK client method), its failure explained."""
        error = getattr(self.provider.import_sdk(), self.provider.client + "Error")
        try:
            return method(**kwargs)
        except error as e:
            raise self.provider.explain(e, self.base_url, self.model) from e


class RemoteOptions(EndpointOptions, total=False):
    name: str | None
    cache: CompletionCache | None
    cache_sampled: bool


class RemoteLLM(LLMBackend):
    """A chat model behind a provider's SDK; subclasses say which provider and how to ask."""

    provider: ClassVar[Provider]
    prefix: ClassVar[str]  # the spec prefix, and of the default name "<prefix>:<model>"

    def __init__(
        self,
        model: str,
        *,
        name: str | None = None,
        cache: CompletionCache | None = None,
        cache_sampled: bool = False,
        **endpoint: Unpack[EndpointOptions],
    ) -> None:
        super().__init__(cache=cache, cache_sampled=cache_sampled)
        self.endpoint = Endpoint(
            self.provider, model, otherwise="choose another backend, e.g. --llm local", **endpoint
        )
        self.model = model
        self.base_url = self.endpoint.base_url
        self.name = name or f"{self.prefix}:{model}"

    @classmethod
    def from_spec(cls, spec: Spec, cache: CompletionCache | None, **options: Any) -> RemoteLLM:
        return cls(spec.model, cache=cache, **spec.endpoint(), **options)

    @property
    def identity(self) -> str:
        return f"{self.base_url}#{self.model}"
