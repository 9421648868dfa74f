"""sentence-transformers embeddings, when that package (and PyTorch) is installed.

``st:<model>`` loads a model by name or local path; offline, pass a path or a model
already in the Hugging Face cache.
"""

from __future__ import annotations

import numpy as np

from memp.embed.base import EmbedderBase
from memp.errors import MissingDependency


class SentenceTransformerEmbedder(EmbedderBase):
    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 32) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise MissingDependency(
                "sentence-transformers", why="the st:<model> embedder runs on it"
            ) from e
        self._model = SentenceTransformer(model, device=device)
        self.name = f"st:{model}"
        self.batch_size = batch_size
        get_dim = getattr(self._model, "get_sentence_embedding_dimension", None)
        self.dim = int(get_dim()) if get_dim else int(self.embed(["probe"]).shape[1])

    def _embed(self, texts: list[str]) -> np.ndarray:
        vecs = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), -1)
