"""OpenAI-compatible embeddings (official ``openai`` SDK): OpenAI, vLLM, Ollama, llama.cpp server.

Retries, timeouts, keys and errors as for the chat backends (:mod:`memp.llm.remote`).
``dim`` is known for OpenAI's models; for others it is read from the first answer (or
passed explicitly), so stores can check it before writing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memp.embed.base import EmbedderBase, unit_rows
from memp.errors import BackendError
from memp.llm.remote import OPENAI, Endpoint

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from memp.llm.remote import EndpointOptions

KNOWN_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder(EmbedderBase):
    def __init__(
        self,
        model: str,
        *,
        dim: int | None = None,
        name: str | None = None,
        batch_size: int = 256,
        **endpoint: Unpack[EndpointOptions],
    ) -> None:
        self.endpoint = Endpoint(OPENAI, model, otherwise="use --embedder local", **endpoint)
        self.model = model
        self.base_url = self.endpoint.base_url
        self.name = name or (
            f"openai:{model}" if self.endpoint.hosted else f"{self.base_url}#{model}"
        )
        self.batch_size = max(1, batch_size)
        self._dim = dim or KNOWN_DIMS.get(model)

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:
            self._dim = int(self._call(["dimension probe"]).shape[1])
        return self._dim

    def _call(self, texts: list[str]) -> np.ndarray:
        resp = self.endpoint.call(
            self.endpoint.client.embeddings.create, model=self.model, input=texts
        )
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
        return unit_rows(vecs)

    def _embed(self, texts: list[str]) -> np.ndarray:
        texts = [t if t else " " for t in texts]  # some servers reject empty strings
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
