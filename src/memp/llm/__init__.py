"""LLM backends behind one protocol, chosen by a spec string.

==============================  ==============================================
spec                            backend
==============================  ==============================================
``local`` (default)             Qwen2.5-Coder-1.5B-Instruct Q4_K_M, llama.cpp
``local:fast``                  Qwen2.5-Coder-0.5B-Instruct Q4_K_M, llama.cpp
``/path/model.gguf``            any GGUF file (also ``local:/path/model.gguf``)
``openai:<model>``              OpenAI (OPENAI_API_KEY, OPENAI_BASE_URL)
``ollama:<model>``              Ollama at http://127.0.0.1:11434/v1 (OLLAMA_HOST)
``anthropic:<model>``           Anthropic (ANTHROPIC_API_KEY)
``http://host:port/v1#<model>`` any OpenAI-compatible server (vLLM, LM Studio,
                                llama.cpp server; key from OPENAI_API_KEY, if
                                the server wants one)
==============================  ==============================================

Provider keys and memp keys never mix: an OpenAI-compatible provider gets the
``api_key`` option or OPENAI_API_KEY, never MEMP_API_KEY (the memp service's key,
read only by :class:`memp.Client`).

With no spec, MEMP_LLM, then ``memp.toml``, then ``local`` decide (see memp.config).
``scripted`` answers from a script: for tests of memory logic only.

Specs are resolved by :data:`LLMS` (see :mod:`memp.llm.plugins`). The built-ins below
register exactly as a plugin package would, from its entry point in the group
``memp.llm``::

    def register(registry):
        registry.register("mine", parse, "my_package.backend:build", help=["mine:<model>"])

``parse(text)`` returns a :class:`~memp.llm.plugins.Spec` for the specs it owns, else
None; ``build(spec, cache, **options)`` returns the LLM (an
:class:`~memp.llm.backend.LLMBackend` gets checks, caching and the ledger for free).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memp.errors import InvalidInput
from memp.llm.base import LLM, Completion, Message
from memp.llm.plugins import Registry, Spec, after, endpoint, ollama_url
from memp.llm.weights import DEFAULT_MODEL, FAST_MODEL

__all__ = ["LLM", "LLMS", "Completion", "Message", "make_llm", "parse_llm_spec"]


def _local(text: str) -> Spec | None:
    if text == "local":
        return Spec(text, "local", DEFAULT_MODEL)
    if text in {"local:fast", "local-fast"}:
        return Spec(text, "local", FAST_MODEL)
    rest = after(text, "local")
    if rest is None:
        return None
    if rest.endswith(".gguf"):
        return Spec(text, "gguf", rest)
    raise InvalidInput(f"unknown local model {rest!r}; use local, local:fast or local:<path>.gguf")


def _gguf(text: str) -> Spec | None:
    return Spec(text, "gguf", text) if text.endswith(".gguf") and "://" not in text else None


def _openai(text: str) -> Spec | None:
    model = after(text, "openai")
    return Spec(text, "openai", model, name=f"openai:{model}") if model else None


def _ollama(text: str) -> Spec | None:
    model = after(text, "ollama")
    return Spec(text, "openai", model, ollama_url(), name=f"ollama:{model}") if model else None


def _anthropic(text: str) -> Spec | None:
    model = after(text, "anthropic")
    return Spec(text, "anthropic", model) if model else None


def _endpoint(text: str) -> Spec | None:
    found = endpoint(text, "LLM", "qwen2.5")
    return None if found is None else Spec(text, "openai", found[1], found[0], name=text)


def _scripted(text: str) -> Spec | None:
    return Spec(text, "scripted", text) if text == "scripted" or after(text, "scripted") else None


def _builtins(registry: Registry[LLM]) -> None:
    # Registration order is the order of the help text and of claiming a spec.
    local = "memp.llm.local:build"
    remote = "memp.llm.openai:OpenAILLM.from_spec"
    registry.register("local", _local, local, help=["local", "local:fast"])
    registry.register("gguf", _gguf, local, help=["<path>.gguf"])
    registry.register("openai", _openai, remote, help=["openai:<model>"])
    registry.register("ollama", _ollama, remote, help=["ollama:<model>"])
    registry.register(
        "anthropic",
        _anthropic,
        "memp.llm.anthropic:AnthropicLLM.from_spec",
        help=["anthropic:<model>"],
    )
    registry.register("endpoint", _endpoint, remote, help=["http://host:port/v1#<model>"])
    # For tests of memory logic only (no help entry: nothing to demonstrate with).
    registry.register(
        "scripted", _scripted, "memp.llm.scripted:ScriptedLLM.from_spec", cached=False
    )


LLMS: Registry[LLM] = Registry("LLM", "memp.llm", builtins=_builtins)


def parse_llm_spec(spec: str) -> tuple[str, str, str | None]:
    """Split a spec into (kind, model, base_url). Raises InvalidInput on nonsense."""
    parsed = LLMS.parse(spec)[1]
    return parsed.kind, parsed.model, parsed.base_url


def _completion_cache(setting: str | Path | bool | None) -> Any:
    from memp.config import cache_setting, resolve
    from memp.llm.cache import CompletionCache

    if setting is None or setting is False:
        return None
    if setting is True:
        setting = resolve("llm_cache").value
    value = cache_setting(str(setting)) if not isinstance(setting, Path) else setting
    if value is None:
        return None
    return CompletionCache(None if value is True else value)


def make_llm(
    spec: str | None = None, *, cache: str | Path | bool | None = True, **options: Any
) -> LLM:
    """Build the LLM a spec names (see the module docstring).

    ``cache``: True uses the configured completion cache (MEMP_LLM_CACHE, default on,
    under ``$MEMP_CACHE``), False/None disables it, a path picks the cache file.
    ``options`` go to the backend (``n_ctx``, ``seed``, ``timeout``, ``max_retries``,
    ``api_key``, ``choice_mode``, ``reuse_prefix``, ...).
    """
    if spec is None:
        from memp.config import resolve

        spec = resolve("llm").value
    plugin, parsed = LLMS.parse(spec)
    completion_cache = _completion_cache(cache) if plugin.cached else None
    return plugin.builder()(parsed, completion_cache, **options)
