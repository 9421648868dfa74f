"""Embedder plugins register like the built-ins; every embedder checks its input the same way."""

from __future__ import annotations

import numpy as np
import pytest

from memp.embed import EMBEDDERS, make_embedder
from memp.embed.base import Embedder, EmbedderBase, unit_rows
from memp.embed.cache import CachedEmbedder
from memp.embed.hashing import HashEmbedder
from memp.errors import InvalidInput
from memp.llm.plugins import Spec, after


class CountingEmbedder(EmbedderBase):
    """A plugin embedder: a text's vector is its letter counts."""

    dim = 26

    def __init__(self, model: str, *, scale: float = 1.0) -> None:
        self.name = f"letters:{model}"
        self.scale = scale
        self.texts_seen = 0

    def _embed(self, texts: list[str]) -> np.ndarray:
        self.texts_seen += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += self.scale
        return unit_rows(out)


def _letters(text: str) -> Spec | None:
    model = after(text, "letters")
    return None if model is None else Spec(text, "letters", model)


@pytest.fixture
def embedders(monkeypatch):
    monkeypatch.setattr(EMBEDDERS, "_plugins", EMBEDDERS.plugins())
    return EMBEDDERS


def test_a_plugin_embedder_is_built_and_cached_like_a_builtin(embedders, tmp_path):
    embedders.register("letters", _letters, CountingEmbedder.from_spec, help=["letters:<name>"])
    emb = make_embedder("letters:abc", cache=tmp_path / "e.sqlite", scale=2.0)
    assert isinstance(emb, CachedEmbedder) and isinstance(emb, Embedder)
    inner = emb.inner
    assert isinstance(inner, CountingEmbedder) and inner.scale == 2.0
    first = emb.embed(["ab", "ba", "ab"])
    again = emb.embed(["ab", "zz"])
    assert inner.texts_seen == 3 and np.allclose(first[0], again[0])
    with pytest.raises(
        InvalidInput, match=r"unknown embedder spec 'lettres:x'; .*\| letters:<name>$"
    ):
        make_embedder("lettres:x")


def test_every_embedder_checks_its_input_the_same_way(tmp_path):
    hashing = HashEmbedder(dim=16)
    for emb in (hashing, CachedEmbedder(hashing, tmp_path / "e.sqlite")):
        with pytest.raises(TypeError, match="not a single string; wrap it in a list"):
            emb.embed("go to cabinet 1")
        with pytest.raises(TypeError, match="strings only"):
            emb.embed(["ok", 3])  # type: ignore[list-item]
        assert emb.embed([]).shape == (0, 16)
    assert make_embedder("hash:16", cache=tmp_path / "x.sqlite").name == "hash:16"  # never cached
    assert not (tmp_path / "x.sqlite").exists()
    v = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert v.dtype == np.float32 and np.allclose(v, [[0.6, 0.8], [0.0, 0.0]])
