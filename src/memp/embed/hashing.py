"""A deterministic bag-of-words hashing embedder (for tests and offline smoke runs).

Each lower-cased word is hashed (BLAKE2b, stable across processes, unlike ``hash()``)
to a signed bucket; the vector is L2-normalised. Texts sharing words get a positive
cosine, disjoint texts ~0. It has no notion of synonyms: use it to test memory logic,
not to judge retrieval quality.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from memp.embed.base import EmbedderBase
from memp.errors import InvalidInput
from memp.llm.plugins import Spec

_WORD = re.compile(r"[a-z0-9]+")


class HashEmbedder(EmbedderBase):
    def __init__(self, dim: int = 384) -> None:
        if dim < 8:
            raise ValueError(f"HashEmbedder dim must be >= 8, got {dim}")
        self.dim = dim
        self.name = f"hash:{dim}"

    def _bucket(self, token: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        return h % self.dim, (1.0 if (h >> 63) & 1 else -1.0)

    @classmethod
    def from_spec(cls, spec: Spec, **_options: Any) -> HashEmbedder:
        """``hash`` or ``hash:<dim>`` (384 by default); it takes no options."""
        if spec.model and not spec.model.isdigit():
            raise InvalidInput(f"hash embedder dim must be an integer, got {spec.model!r}")
        return cls(dim=int(spec.model) if spec.model else 384)

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower()) or ["<empty>"]
            for w in words:
                j, sign = self._bucket(w)
                out[i, j] += sign
            norm = float(np.linalg.norm(out[i]))
            if norm == 0.0:  # colliding signs cancelled out: fall back to one bucket
                j, _ = self._bucket(words[0])
                out[i, j], norm = 1.0, 1.0
            out[i] /= norm
        return out
