"""Choosing embedders by spec, the on-disk embedding cache, and clear errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from memp.embed import make_embedder
from memp.embed.cache import CachedEmbedder
from memp.errors import InvalidInput, MissingDependency


def test_cache_serves_known_texts_and_persists(local_embedder, tmp_path):
    path = tmp_path / "emb.sqlite"
    texts = ["clean the mug", "heat the egg", "clean the mug"]
    cached = CachedEmbedder(local_embedder, path)
    first = cached.embed(texts)
    assert cached.misses == 2 and cached.hits == 0  # the repeated text is embedded once
    assert np.allclose(first, local_embedder.embed(texts), atol=1e-6)
    again = CachedEmbedder(local_embedder, path)  # a new process would see the same file
    second = again.embed(["heat the egg", "clean the mug", "cool the apple"])
    assert again.hits == 2 and again.misses == 1
    assert np.allclose(second[0], first[1]) and np.allclose(second[1], first[0])
    assert again.name == local_embedder.name and again.dim == 384


def test_make_embedder_specs(tmp_path, monkeypatch):
    h = make_embedder("hash:64")
    assert h.dim == 64 and h.embed(["a b"]).shape == (1, 64)
    monkeypatch.setenv("MEMP_EMBEDDER", "hash")
    assert make_embedder().name == "hash:384"
    local = make_embedder("local", cache=tmp_path / "e.sqlite")
    assert isinstance(local, CachedEmbedder) and local.dim == 384
    assert make_embedder("local", cache=False).name == "local:all-minilm-l6-v2-int8"
    with pytest.raises(InvalidInput, match="unknown embedder spec"):
        make_embedder("word2vec")
    with pytest.raises(InvalidInput, match="needs a model"):
        make_embedder("http://127.0.0.1:1/v1")


def test_sentence_transformers_backend_needs_its_package():
    if importlib.util.find_spec("sentence_transformers") is None:
        with pytest.raises(MissingDependency, match="pip install sentence-transformers"):
            make_embedder("st:all-MiniLM-L6-v2", cache=False)
    else:  # installed: the backend module must at least import cleanly
        from memp.embed.sentence_transformers import SentenceTransformerEmbedder

        assert SentenceTransformerEmbedder.embed
