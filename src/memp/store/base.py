"""The MemoryStore protocol: the door every storage backend goes through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from memp.types import Procedure, ProcedureStatus, Trajectory

VectorKind = Literal["task", "key", "fact"]
# Every vector kind, in the order a procedure lists its vectors.
KINDS: tuple[VectorKind, ...] = ("task", "key", "fact")


@runtime_checkable
class MemoryStore(Protocol):
    """Durable storage of procedures (with versions and usage) and trajectories.

    Every write is one transaction. Vectors are L2-normalised float32; ``search``
    returns inner products (= cosine). ``dim`` is fixed by the first vector stored;
    a vector of another size raises :class:`memp.errors.DimensionMismatch`.

    Ids (of procedures and of trajectories) are unique within a namespace: another
    namespace may hold the same id as a record of its own, and nothing done in one
    namespace reads, changes or reveals another's. ``namespace=None`` means any
    namespace (single-user and admin use); an id held by several is then refused.
    """

    @property
    def dim(self) -> int | None: ...

    @property
    def embedder_identity(self) -> dict[str, Any] | None:
        """The embedder the stored vectors come from (``{"name", "dim"}``), once recorded."""
        ...

    def check_embedder(self, name: str, dim: int) -> None:
        """Record the embedder if none is recorded yet (atomically: concurrent first
        writers agree), else raise :class:`memp.errors.EmbedderMismatch` if it differs."""
        ...

    # procedures
    def add(self, procedures: Sequence[Procedure]) -> None: ...
    def get(self, procedure_id: str, *, namespace: str | None = None) -> Procedure: ...
    def update(self, procedure: Procedure, *, reason: str = "") -> Procedure:
        """Store a new version of ``procedure`` (the one with its id in its namespace;
        version + 1); the old one stays in history."""
        ...

    def history(self, procedure_id: str, *, namespace: str | None = None) -> list[Procedure]: ...
    def list(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Procedure]: ...
    def count(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
    ) -> int: ...
    def set_status(
        self, procedure_id: str, status: ProcedureStatus, *, namespace: str | None = None
    ) -> Procedure: ...
    def record_usage(
        self,
        procedure_id: str,
        *,
        retrieved: int = 0,
        succeeded: int = 0,
        failed: int = 0,
        namespace: str | None = None,
    ) -> None:
        """Atomically add to the usage counters (safe under concurrent writers)."""
        ...

    def search(
        self,
        vector: np.ndarray,
        *,
        kind: VectorKind = "task",
        k: int = 10,
        namespace: str | None = None,
        environment: str | None = None,
    ) -> list[tuple[str, float]]:
        """Exact top-k (procedure id, cosine) among active procedures.

        For ``kind="fact"`` the score of a procedure is its best-matching fact.
        """
        ...

    # trajectories (the raw material)
    def add_trajectory(self, trajectory: Trajectory, *, namespace: str = "default") -> None: ...
    def get_trajectory(self, trajectory_id: str, *, namespace: str | None = None) -> Trajectory: ...
    def list_trajectories(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trajectory]: ...

    def close(self) -> None: ...
