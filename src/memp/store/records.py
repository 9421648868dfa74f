"""Record rules every store backend shares, so the backends cannot drift apart.

How a procedure is split into a JSON body, usage columns and vectors (and put back
together), what the next version of a procedure looks like, how records are
exported and read back, and the errors both backends raise in the same situations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np

from memp.errors import InvalidInput, NotFound, check_choice
from memp.store.base import KINDS
from memp.types import Procedure, ProcedureStatus, Trajectory, now

VECTOR_FIELDS = {"embedding", "key_embedding", "fact_embeddings"}
# Usage and status live in their own columns (atomic counters, filtered search).
BODY_EXCLUDE = VECTOR_FIELDS | {"usage", "status"}
# How far a norm may be from 1 before a vector is renormalised: small enough that
# unit vectors round-trip bit for bit.
NORM_TOLERANCE = 1e-4


def body(p: Procedure) -> str:
    return p.model_dump_json(exclude=BODY_EXCLUDE)


def snapshot(p: Procedure) -> str:
    """What the history keeps of a replaced version (no vectors)."""
    return p.model_dump_json(exclude=VECTOR_FIELDS)


def from_columns(
    data: dict[str, Any],
    *,
    status: str,
    retrieved: int,
    succeeded: int,
    failed: int,
    last_used_at: datetime | str | None,
    vectors: Mapping[str, Sequence[list[float]]] | None = None,
) -> Procedure:
    """A procedure from its body, its status and usage columns and (optionally) its
    vectors by kind; kinds missing from ``vectors`` stay empty."""
    data = dict(data)
    data["status"] = status
    data["usage"] = {
        "retrieved": retrieved,
        "succeeded": succeeded,
        "failed": failed,
        "last_used_at": last_used_at,
    }
    if vectors:
        data["embedding"] = vectors["task"][0] if vectors.get("task") else None
        data["key_embedding"] = vectors["key"][0] if vectors.get("key") else None
        data["fact_embeddings"] = list(vectors.get("fact", []))
    return Procedure.model_validate(data)


def unit(vector: Any) -> np.ndarray:
    """float32, flattened, renormalised only when clearly off (so vectors round-trip exactly)."""
    v = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(v))
    if norm > 0 and abs(norm - 1.0) > NORM_TOLERANCE:
        v = (v / norm).astype(np.float32)
    return v


def unit_rows(matrix: Any) -> np.ndarray:
    """:func:`unit` applied to every row of an (n, dim) matrix at once."""
    m = np.ascontiguousarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    off = (norms > 0) & (np.abs(norms - 1.0) > NORM_TOLERANCE)
    if off.any():
        m = np.where(off, m / np.where(off, norms, 1.0), m).astype(np.float32)
    return m


def query_vector(vector: Any, kind: str) -> np.ndarray:
    """A search query: the vector kind checked, float32, flattened, L2-normalised."""
    check_choice("vector kind", kind, KINDS)
    q = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(q))
    return q / norm if norm > 0 else q


def vectors_of(p: Procedure, kinds: Sequence[str] = KINDS) -> Iterator[tuple[str, Any]]:
    """(kind, vector) pairs of a procedure, facts in order."""
    for kind in kinds:
        if kind == "task" and p.embedding is not None:
            yield kind, p.embedding
        elif kind == "key" and p.key_embedding is not None:
            yield kind, p.key_embedding
        elif kind == "fact":
            for v in p.fact_embeddings:
                yield kind, v


def given_kinds(p: Procedure) -> tuple[str, ...]:
    """Vector kinds an updated record carries; the others keep their stored vectors."""
    return tuple(
        k
        for k, given in (
            ("task", p.embedding is not None),
            ("key", p.key_embedding is not None),
            ("fact", bool(p.fact_embeddings)),
        )
        if given
    )


def next_version(old: Procedure, new: Procedure, reason: str) -> Procedure:
    """The stored form of ``new`` replacing ``old``: version + 1, usage, status and
    namespace as stored, the reason kept in metadata."""
    meta = dict(new.metadata)
    meta["change_reason"] = reason
    return new.model_copy(
        update={
            "version": old.version + 1,
            "updated_at": now(),
            "metadata": meta,
            "status": old.status,
            "usage": old.usage,
            "namespace": old.namespace,
        }
    )


def scope_filters(
    namespace: str | None, environment: str | None = None, status: ProcedureStatus | None = None
) -> list[tuple[str, str]]:
    """(column, value) equality filters of a scoped read; ``None`` means any."""
    value = ProcedureStatus(status).value if status is not None else None
    filters = (("namespace", namespace), ("environment", environment), ("status", value))
    return [(col, val) for col, val in filters if val is not None]


# -- errors both backends raise ---------------------------------------------------


def procedure_not_found(procedure_id: str, namespace: str | None, where: str) -> NotFound:
    scope = f" in namespace {namespace!r}" if namespace is not None else ""
    return NotFound(f"no procedure {procedure_id!r}{scope} in {where}")


def duplicate_procedure(detail: object) -> InvalidInput:
    return InvalidInput(
        f"a procedure with one of these ids already exists ({detail}); "
        "use update() to store a new version"
    )


def trajectory_taken(trajectory_id: str) -> InvalidInput:
    return InvalidInput(
        f"trajectory id {trajectory_id!r} is taken in another namespace; "
        "give the trajectory a new id"
    )


# -- export / import ----------------------------------------------------------------

RecordKind = Literal["procedure", "version", "trajectory"]


def procedure_record(p: Procedure) -> dict[str, Any]:
    return {"type": "procedure", "record": p.model_dump(mode="json")}


def version_record(snap: dict[str, Any]) -> dict[str, Any]:
    return {"type": "version", "record": snap}


def trajectory_record(namespace: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "trajectory", "namespace": namespace, "record": data}


def parse_record(i: int, rec: dict[str, Any]) -> tuple[RecordKind, Procedure | Trajectory, str]:
    """One exported record -> (kind, model, namespace); a clear error names record ``i``."""
    kind = rec.get("type")
    if kind in ("procedure", "version"):
        p = Procedure.model_validate(rec["record"])
        return kind, p, p.namespace
    if kind == "trajectory":
        return (
            "trajectory",
            Trajectory.model_validate(rec["record"]),
            rec.get("namespace", "default"),
        )
    raise InvalidInput(
        f"record {i}: unknown record type {kind!r}; expected procedure, version or trajectory"
    )


def already_stored(i: int, procedure_id: str, where: str) -> InvalidInput:
    return InvalidInput(
        f"record {i}: procedure {procedure_id} already exists in {where}; "
        "import into an empty store or pass replace=True"
    )
