"""OpenAI-compatible embeddings (official ``openai`` SDK): OpenAI, vLLM, Ollama, llama.cpp server.

``dim`` is known for OpenAI's models; for others it is read from the first answer (or
passed explicitly), so stores can check it before writing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from memp.errors import BackendError
from memp.llm.openai import OPENAI_URL, explain_openai_error, provider_key

KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        name: str | None = None,
        batch_size: int = 256,
        timeout: float = 60.0,
        max_retries: int = 4,
    ) -> None:
        import openai

        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        self.name = name or (
            f"openai:{model}" if self.base_url == OPENAI_URL else f"{self.base_url}#{model}"
        )
        self.batch_size = max(1, batch_size)
        key = provider_key(api_key)
        if not key:
            if self.base_url == OPENAI_URL:
                raise BackendError("OPENAI_API_KEY is not set: export it, or use --embedder local")
            key = "not-needed"
        self._client = openai.OpenAI(
            api_key=key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )
        self._dim = dim or KNOWN_DIMS.get(model)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._call(["dimension probe"]).shape[1])
        return self._dim

    def _call(self, texts: list[str]) -> np.ndarray:
        import openai

        try:
            resp = self._client.embeddings.create(model=self.model, input=texts)
        except openai.OpenAIError as e:
            raise explain_openai_error(e, self.base_url, self.model) from e
        rows = sorted(resp.data, key=lambda d: d.index)
        # A server running a model without a pooling layer (llama.cpp with a chat model)
        # answers one vector per token: mean-pool them, as a pooled model would.
        vecs = np.asarray(
            [
                np.mean(np.asarray(r.embedding, dtype=np.float32), axis=0)
                if r.embedding and isinstance(r.embedding[0], list)
                else r.embedding
                for r in rows
            ],
            dtype=np.float32,
        )
        if vecs.ndim != 2 or vecs.shape[0] != len(texts):
            raise BackendError(
                f"{self.base_url} returned {vecs.shape[0]} embeddings for {len(texts)} texts"
            )
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.clip(norms, 1e-12, None)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError(
                "embed() takes a sequence of texts, not a single string; wrap it in a list"
            )
        texts = [t if t else " " for t in texts]  # some servers reject empty strings
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._call(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        out = np.concatenate(parts, axis=0)
        if self._dim is None:
            self._dim = int(out.shape[1])
        elif out.shape[1] != self._dim:
            raise BackendError(
                f"{self.name} returned {out.shape[1]}-dim vectors, expected {self._dim}"
            )
        return out
