"""Record rules every store backend shares, so the backends cannot drift apart.

How a procedure is split into a JSON body, usage columns and vectors (and put back
together), what the next version of a procedure looks like, how records are
exported and read back (and imported, namespace by namespace), which embedder a store
belongs to, and the errors both backends raise in the same situations.

Ids are unique within a namespace, not across them: a tenant reusing another tenant's
id gets a record of its own, so no answer can reveal that the id exists elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np

from memp.errors import EmbedderMismatch, InvalidInput, NotFound, check_choice
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


def not_found(kind: str, ident: str, namespace: str | None, where: str) -> NotFound:
    scope = f" in namespace {namespace!r}" if namespace is not None else ""
    return NotFound(f"no {kind} {ident!r}{scope} in {where}")


def procedure_not_found(procedure_id: str, namespace: str | None, where: str) -> NotFound:
    return not_found("procedure", procedure_id, namespace, where)


def the_one(rows: Sequence[Any], kind: str, ident: str, namespace: str | None, where: str) -> Any:
    """The one row an id names (fetch up to two). Without a namespace, an id held by
    several namespaces is refused rather than guessed."""
    if not rows:
        raise not_found(kind, ident, namespace, where)
    if len(rows) > 1:
        raise InvalidInput(
            f"{kind} id {ident!r} exists in several namespaces of {where}; "
            "pass namespace=... to say which"
        )
    return rows[0]


def duplicate_procedure(detail: object) -> InvalidInput:
    return InvalidInput(
        f"a procedure with one of these ids already exists in its namespace ({detail}); "
        "use update() to store a new version"
    )


# -- embedder identity -----------------------------------------------------------------


def identity(name: str, dim: int) -> str:
    """What a store records of the embedder its vectors come from (meta key ``embedder``)."""
    return json.dumps({"name": name, "dim": int(dim)})


def _spec_of(name: str) -> str:
    # The local embedder is named after its model; the spec that selects it is "local".
    return "local" if name.startswith("local:") else name


def check_identity(stored: Mapping[str, Any], name: str, dim: int, where: str) -> None:
    """Refuse an embedder other than the one the store's vectors were made with: two
    embedders of one dimension give vectors that fit but do not compare."""
    if stored.get("name") == name and int(stored.get("dim", dim)) == int(dim):
        return
    was, spec = stored.get("name"), _spec_of(str(stored.get("name")))
    raise EmbedderMismatch(
        f"{where} holds vectors made by embedder {was!r} ({stored.get('dim')} dims) but was "
        f"opened with {name!r} ({dim} dims); vectors of different embedders do not compare, "
        f"even at the same dimension. Open it with --embedder {spec} (MEMP_EMBEDDER={spec}, "
        f"or Memory(embedder=make_embedder({spec!r}))), or use a new store for {name!r}"
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


def already_stored(i: int, what: str, where: str) -> InvalidInput:
    return InvalidInput(
        f"record {i}: {what} already exists in {where}; "
        "import into an empty store or pass replace=True"
    )


def run_import(
    records: Iterable[dict[str, Any]],
    *,
    replace: bool,
    namespace: str | None,
    where: str,
    has: Callable[[str, str], bool],
    drop: Callable[[str, str], None],
    insert: Callable[[Procedure], None],
    put_version: Callable[[Procedure, bool], bool],
    put_trajectory: Callable[[Trajectory, str], None],
) -> int:
    """The import both backends run inside their one transaction; returns how many records.

    Every record lands in its own namespace and touches only that namespace: a procedure
    id held by another namespace is a different procedure there. ``namespace``, when
    given, is the only namespace the import may write. ``put_version(p, replace)`` says
    whether it stored the version (False: it exists and ``replace`` is off). A version
    must come with its procedure, in the import or already stored in its namespace, so
    no history can be planted for a procedure that does not exist yet.
    """
    versions: dict[tuple[str, str], int] = {}
    n = 0
    for i, rec in enumerate(records, 1):
        kind, obj, ns = parse_record(i, rec)
        if namespace is not None and ns != namespace:
            raise InvalidInput(
                f"record {i} belongs to namespace {ns!r}; this import writes only {namespace!r}"
            )
        if isinstance(obj, Trajectory):
            put_trajectory(obj, ns)
        elif kind == "version":
            if not put_version(obj, replace):
                raise already_stored(i, f"version {obj.version} of procedure {obj.id}", where)
            versions.setdefault((ns, obj.id), i)
        else:
            if has(ns, obj.id):
                if not replace:
                    raise already_stored(i, f"procedure {obj.id}", where)
                drop(ns, obj.id)  # its versions stay: the import may bring more
            insert(obj)
        n += 1
    for (ns, pid), i in versions.items():
        if not has(ns, pid):
            raise InvalidInput(
                f"record {i}: a version of procedure {pid!r} but no procedure {pid!r} in "
                f"namespace {ns!r}; import versions together with their procedure record"
            )
    return n
