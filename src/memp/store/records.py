"""Record rules every store backend shares, so the backends cannot drift apart.

How a procedure is split into a JSON body and vectors, what the next version of a
procedure looks like, and how exported records are read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from memp.errors import InvalidInput
from memp.types import Procedure, Trajectory, now

VECTOR_FIELDS = {"embedding", "key_embedding", "fact_embeddings"}
# Usage and status live in their own columns (atomic counters, filtered search).
BODY_EXCLUDE = VECTOR_FIELDS | {"usage", "status"}


def body(p: Procedure) -> str:
    return p.model_dump_json(exclude=BODY_EXCLUDE)


def snapshot(p: Procedure) -> str:
    """What the history keeps of a replaced version (no vectors)."""
    return p.model_dump_json(exclude=VECTOR_FIELDS)


def unit(vector: Any) -> np.ndarray:
    """float32, flattened, renormalised only when clearly off (so vectors round-trip exactly)."""
    v = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(v))
    if norm > 0 and abs(norm - 1.0) > 1e-4:
        v = (v / norm).astype(np.float32)
    return v


def vectors_of(
    p: Procedure, kinds: tuple[str, ...] = ("task", "key", "fact")
) -> Iterator[tuple[str, Any]]:
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


RecordKind = Literal["procedure", "version", "trajectory"]


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
