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
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from memp.errors import InvalidInput
from memp.llm.base import LLM, Completion, Message

__all__ = ["LLM", "Completion", "Message", "make_llm", "parse_llm_spec"]

SPEC_HELP = (
    "local | local:fast | <path>.gguf | openai:<model> | ollama:<model> | "
    "anthropic:<model> | http://host:port/v1#<model>"
)

# Loading a local model costs seconds and ~1-2 GB: one instance per (file, options).
_LOCAL: dict[tuple[Any, ...], Any] = {}
_LOCAL_LOCK = threading.Lock()


def parse_llm_spec(spec: str) -> tuple[str, str, str | None]:
    """Split a spec into (kind, model, base_url). Raises InvalidInput on nonsense."""
    s = spec.strip()
    if not s:
        raise InvalidInput(f"empty LLM spec; use one of: {SPEC_HELP}")
    if s == "local":
        return "local", "qwen2.5-coder-1.5b", None
    if s in {"local:fast", "local-fast"}:
        return "local", "qwen2.5-coder-0.5b", None
    if s.startswith("local:"):
        rest = s.removeprefix("local:")
        if rest.endswith(".gguf"):
            return "gguf", rest, None
        raise InvalidInput(
            f"unknown local model {rest!r}; use local, local:fast or local:<path>.gguf"
        )
    if s.endswith(".gguf") and "://" not in s:
        return "gguf", s, None
    if s.startswith(("http://", "https://")):
        url, sep, model = s.partition("#")
        if not sep or not model:
            raise InvalidInput(
                f"LLM endpoint {s!r} needs a model after '#', e.g. http://127.0.0.1:8000/v1#qwen2.5"
            )
        return "openai", model, url
    kind, sep, model = s.partition(":")
    if sep and model and kind in {"openai", "ollama", "anthropic"}:
        if kind == "ollama":
            host = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
            if "://" not in host:
                host = "http://" + host
            return "openai", model, host.rstrip("/") + "/v1"
        return kind, model, None
    raise InvalidInput(f"unknown LLM spec {spec!r}; use one of: {SPEC_HELP}")


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
    kind, model, base_url = parse_llm_spec(spec)
    completion_cache = _completion_cache(cache)
    if kind in {"local", "gguf"}:
        from memp.llm.local import LocalLLM, _import_llama

        _import_llama()  # the missing runtime is the first thing to report
        if kind == "local":
            from memp.llm.weights import ensure_model

            path = ensure_model(model)
            name = f"local:{model}-q4_k_m"
        else:
            path = Path(model).expanduser()
            if not path.is_file():
                raise InvalidInput(f"GGUF model file {path} does not exist")
            name = f"gguf:{path.name}"
        key = (str(path.resolve()), tuple(sorted(options.items())))
        with _LOCAL_LOCK:
            base = _LOCAL.get(key)
            if base is None:
                base = _LOCAL[key] = LocalLLM(path, name=name, **options)
        if completion_cache is None and base.cache is None:
            return base
        # Share the loaded weights; give this caller its own cache setting.
        return _with_cache(base, completion_cache)
    if kind == "anthropic":
        from memp.llm.anthropic import AnthropicLLM

        return AnthropicLLM(model, base_url=base_url, cache=completion_cache, **options)
    from memp.llm.openai import OpenAILLM

    name = (
        f"openai:{model}"
        if base_url is None
        else (f"ollama:{model}" if spec.startswith("ollama:") else f"{base_url}#{model}")
    )
    return OpenAILLM(model, base_url=base_url, name=name, cache=completion_cache, **options)


def _with_cache(base: Any, cache: Any) -> Any:
    import copy

    view = copy.copy(base)  # shares the Llama object and its lock
    view.cache = cache
    return view
