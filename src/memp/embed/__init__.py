"""Embedding backends behind one protocol, chosen by a spec string.

``local`` (default: all-MiniLM-L6-v2 int8 ONNX), ``hash`` / ``hash:<dim>`` (deterministic
test embedder), ``openai:<model>``, ``ollama:<model>``, ``http://host:port/v1#<model>``
(any OpenAI-compatible embeddings endpoint), ``st:<model>`` (sentence-transformers,
when installed). With no spec, MEMP_EMBEDDER, then ``memp.toml``, then ``local``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from memp.embed.base import Embedder
from memp.errors import InvalidInput

__all__ = ["Embedder", "make_embedder"]

SPEC_HELP = "local | hash[:dim] | openai:<model> | ollama:<model> | http://host:port/v1#<model> | st:<model>"

_LOCAL: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


def make_embedder(
    spec: str | None = None, *, cache: str | Path | bool | None = True, **options: Any
) -> Embedder:
    """Build the embedder a spec names.

    ``cache``: True uses the configured embedding cache (MEMP_EMBED_CACHE, default on;
    never for ``hash``, which is cheaper than a lookup), False/None disables it, a path
    picks the cache file.
    """
    from memp.config import cache_setting, resolve

    if spec is None:
        spec = resolve("embedder").value
    s = spec.strip()
    inner: Any
    if s == "hash" or s.startswith("hash:"):
        from memp.embed.hashing import HashEmbedder

        dim = s.partition(":")[2]
        if dim and not dim.isdigit():
            raise InvalidInput(f"hash embedder dim must be an integer, got {dim!r}")
        return HashEmbedder(dim=int(dim) if dim else 384)
    if s == "local":
        from memp.embed.local import MiniLMEmbedder

        key = tuple(sorted(options.items()))
        with _LOCK:
            inner = _LOCAL.get(key)
            if inner is None:
                inner = _LOCAL[key] = MiniLMEmbedder(**options)
    elif s.startswith("st:"):
        from memp.embed.sentence_transformers import SentenceTransformerEmbedder

        inner = SentenceTransformerEmbedder(s[3:], **options)
    elif s.startswith(("openai:", "ollama:", "http://", "https://")):
        from memp.embed.openai import OpenAIEmbedder

        if s.startswith("openai:"):
            inner = OpenAIEmbedder(s[7:], **options)
        elif s.startswith("ollama:"):
            host = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
            host = host if "://" in host else "http://" + host
            inner = OpenAIEmbedder(s[7:], base_url=host.rstrip("/") + "/v1", name=s, **options)
        else:
            url, sep, model = s.partition("#")
            if not sep or not model:
                raise InvalidInput(
                    f"embedding endpoint {s!r} needs a model after '#', e.g. http://127.0.0.1:8000/v1#nomic-embed"
                )
            inner = OpenAIEmbedder(model, base_url=url, **options)
    else:
        raise InvalidInput(f"unknown embedder spec {spec!r}; use one of: {SPEC_HELP}")

    if cache is None or cache is False:
        return inner
    value: Path | bool | None
    if cache is True:
        value = cache_setting(resolve("embed_cache").value)
    else:
        value = Path(cache).expanduser()
    if value is None:
        return inner
    from memp.embed.cache import CachedEmbedder

    return CachedEmbedder(inner, None if value is True else value)
