"""Embedding backends behind one protocol, chosen by a spec string.

``local`` (default: all-MiniLM-L6-v2 int8 ONNX), ``hash`` / ``hash:<dim>`` (deterministic
test embedder), ``openai:<model>``, ``ollama:<model>``, ``http://host:port/v1#<model>``
(any OpenAI-compatible embeddings endpoint), ``st:<model>`` (sentence-transformers,
when installed). With no spec, MEMP_EMBEDDER, then ``memp.toml``, then ``local``.

Specs are resolved by :data:`EMBEDDERS`, a registry like :data:`memp.llm.LLMS`: the
built-ins below register as a plugin package would (entry point group ``memp.embed``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memp.embed.base import Embedder
from memp.llm.plugins import Registry, Spec, after, endpoint, ollama_url

__all__ = ["EMBEDDERS", "Embedder", "make_embedder"]


def _prefixed(prefix: str, kind: str) -> Any:
    def parse(text: str) -> Spec | None:
        model = after(text, prefix)
        return None if model is None else Spec(text, kind, model)

    return parse


def _hash(text: str) -> Spec | None:
    return Spec(text, "hash", "") if text == "hash" else _prefixed("hash", "hash")(text)


def _local(text: str) -> Spec | None:
    return Spec(text, "local", "all-minilm-l6-v2-int8") if text == "local" else None


def _ollama(text: str) -> Spec | None:
    model = after(text, "ollama")
    return None if model is None else Spec(text, "openai", model, ollama_url(), name=text)


def _endpoint(text: str) -> Spec | None:
    found = endpoint(text, "embedding", "nomic-embed")
    return None if found is None else Spec(text, "openai", found[1], found[0])


def _builtins(registry: Registry[Embedder]) -> None:
    # Registration order is the order of the help text and of claiming a spec.
    remote = "memp.embed.openai:OpenAIEmbedder.from_spec"
    registry.register("local", _local, "memp.embed.local:build", help=["local"])
    # Hashing is cheaper than a cache lookup.
    registry.register(
        "hash",
        _hash,
        "memp.embed.hashing:HashEmbedder.from_spec",
        help=["hash[:dim]"],
        cached=False,
    )
    registry.register("openai", _prefixed("openai", "openai"), remote, help=["openai:<model>"])
    registry.register("ollama", _ollama, remote, help=["ollama:<model>"])
    registry.register("endpoint", _endpoint, remote, help=["http://host:port/v1#<model>"])
    registry.register(
        "st",
        _prefixed("st", "st"),
        "memp.embed.sentence_transformers:SentenceTransformerEmbedder.from_spec",
        help=["st:<model>"],
    )


EMBEDDERS: Registry[Embedder] = Registry("embedder", "memp.embed", builtins=_builtins)


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
    plugin, parsed = EMBEDDERS.parse(spec)
    inner = plugin.builder()(parsed, **options)
    if not plugin.cached or cache is None or cache is False:
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
