"""An embedding cache: texts already embedded by a model are not embedded again.

Vectors live in a SQLite file keyed by (embedder name, sha256 of the text), so a
re-run of an experiment, or a memory re-indexed after an import, costs lookups only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from memp.embed.base import Embedder, EmbedderBase
from memp.llm.cache import SQLiteFile
from memp.llm.weights import cache_root


def default_embed_cache_path() -> Path:
    return cache_root() / "embeddings.sqlite"


class CachedEmbedder(SQLiteFile, EmbedderBase):
    """Wraps an Embedder; same name and dim, vectors served from disk when known."""

    def __init__(self, inner: Embedder, path: str | Path | None = None) -> None:
        super().__init__(
            Path(path) if path else default_embed_cache_path(),
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " model TEXT NOT NULL, text_sha TEXT NOT NULL, dim INTEGER NOT NULL,"
            " vec BLOB NOT NULL, PRIMARY KEY (model, text_sha))",
        )
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _sha(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        shas = [self._sha(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            uniq = list(dict.fromkeys(shas))
            for start in range(0, len(uniq), 500):  # SQLite's parameter limit
                chunk = uniq[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for sha, dim, blob in self._conn.execute(
                    f"SELECT text_sha, dim, vec FROM embeddings WHERE model = ? AND text_sha IN ({marks})",
                    (self.name, *chunk),
                ):
                    if dim == self.dim:
                        found[sha] = np.frombuffer(blob, dtype=np.float32)
        todo = [i for i, s in enumerate(shas) if s not in found]
        # Embed each missing text once, even if it repeats in the batch.
        todo_uniq = list(dict.fromkeys(shas[i] for i in todo))
        first = {s: i for i in reversed(todo) for s in [shas[i]]}
        if todo_uniq:
            vecs = np.asarray(
                self.inner.embed([texts[first[s]] for s in todo_uniq]), dtype=np.float32
            )
            with self._lock, self._conn:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO embeddings (model, text_sha, dim, vec) VALUES (?, ?, ?, ?)",
                    [
                        (self.name, s, self.dim, v.tobytes())
                        for s, v in zip(todo_uniq, vecs, strict=True)
                    ],
                )
            found.update(zip(todo_uniq, vecs, strict=True))
        self.hits += len(texts) - len(todo)
        self.misses += len(todo_uniq)
        for i, s in enumerate(shas):
            out[i] = found[s]
        return out
