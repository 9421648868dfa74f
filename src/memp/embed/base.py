"""The Embedder protocol: the door every embedding backend goes through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from typing import Self

    from memp.llm.plugins import Spec


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), dtype float32, rows of norm 1."""
        ...


class EmbedderBase:
    """What memp's embedders share: the input check and the empty batch.

    A backend implements ``_embed`` for a non-empty list of strings.
    """

    name: str
    dim: int

    @classmethod
    def from_spec(cls, spec: Spec, **options: Any) -> Self:
        """The embedder a parsed spec names (the registry's factory)."""
        return cls(spec.model, **spec.endpoint(), **options)  # type: ignore[call-arg]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):  # a bare string would embed each character
            raise TypeError(
                "embed() takes a sequence of texts, not a single string; wrap it in a list"
            )
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if any(not isinstance(t, str) for t in texts):
            raise TypeError("embed() takes strings only")
        return self._embed(texts)

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def unit_rows(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to norm 1 (zero rows stay zero), as float32."""
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.clip(norms, 1e-12, None)).astype(np.float32)
