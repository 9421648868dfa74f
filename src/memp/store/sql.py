"""The SQL skeleton both stores stand on: every rule they share, written once.

:class:`SqlStore` is a :class:`~memp.store.base.MemoryStore` over five tables
(meta, procedures, procedure_versions, vectors, trajectories). It holds the logic:
how records become rows and back, namespace-scoped reads, versions and history,
usage counters, retirement, export/import, the migration runner and the embedder
check. A backend names its schema (table and column names, see the class
attributes) and supplies only what truly differs: connections and transactions,
DDL and migrations, what the first vector does to the schema, change tracking, and
vector search (exact numpy in SQLite, HNSW in pgvector).

Statements are written with ``?`` placeholders and read rows by column name;
:class:`Tx` rewrites them for a driver of another parameter style.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
from pydantic import BaseModel

from memp.errors import DimensionMismatch, InvalidInput, StoreError
from memp.store.base import KINDS, VectorKind
from memp.store.records import (
    body,
    check_identity,
    duplicate_procedure,
    from_columns,
    given_kinds,
    identity,
    next_version,
    procedure_not_found,
    procedure_record,
    query_vector,
    run_import,
    scope_filters,
    snapshot,
    the_one,
    trajectory_record,
    unit,
    vectors_of,
    version_record,
)
from memp.types import Procedure, ProcedureStatus, Trajectory, now

M = TypeVar("M", bound=BaseModel)

# Procedure columns an update leaves as stored (identity, status, usage, creation).
_KEPT = frozenset(
    {"id", "namespace", "status", "retrieved", "succeeded", "failed", "last_used_at", "created_at"}
)


@lru_cache(maxsize=1024)
def _percent_style(sql: str) -> str:
    return sql.replace("?", "%s")


class Tx:
    """One transaction (or read) on a driver's connection or cursor.

    ``dim`` is the vector dimension this transaction read or fixed; the store keeps
    it once the transaction has committed (a rolled-back first vector fixes nothing).
    """

    __slots__ = ("_format", "dim", "raw")

    def __init__(self, raw: Any, param: str) -> None:
        self.raw = raw
        self.dim: int | None = None
        self._format = _percent_style if param == "%s" else None

    def _sql(self, sql: str) -> str:
        return self._format(sql) if self._format is not None else sql

    def run(self, sql: str, args: Sequence[Any] = ()) -> Any:
        # Without parameters a driver may run several statements (migrations).
        if not args:
            return self.raw.execute(self._sql(sql))
        return self.raw.execute(self._sql(sql), args)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(sql), rows)

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self.run(sql, args).fetchall()

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.run(sql, args).fetchone()


def clause(alias: str, pairs: Iterable[tuple[str, Any]], *terms: str) -> tuple[str, list[Any]]:
    """`` WHERE`` over literal ``terms`` and ``column = ?`` pairs, and the pairs' values."""
    pairs = list(pairs)
    where = [*terms, *(f"{alias}{col} = ?" for col, _ in pairs)]
    return (f" WHERE {' AND '.join(where)}" if where else ""), [val for _, val in pairs]


def insert_sql(table: str, columns: Iterable[str], tail: str = "") -> str:
    cols = list(columns)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}){tail}"


def insert(c: Tx, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows of one shape (in order: the listing order is insertion order)."""
    if rows:
        c.many(insert_sql(table, rows[0]), [tuple(r.values()) for r in rows])


def decode(value: Any) -> Any:
    """A JSON column's value: text in SQLite, already parsed (jsonb) in PostgreSQL."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def model(cls: type[M], value: Any) -> M:
    return (
        cls.model_validate_json(value)
        if isinstance(value, str | bytes)
        else cls.model_validate(value)
    )


class SqlStore(ABC):
    """The shared body of the SQL stores; a backend subclass fills in the hooks below."""

    # -- the backend's schema and dialect ---------------------------------------------
    _PARAM: ClassVar[str] = "?"  # the driver's placeholder
    _META: ClassVar[str]  # the key/value table (dim, embedder)
    _BODY: ClassVar[str]  # the JSON column of procedures and trajectories
    _VERSION_ID: ClassVar[str]  # the procedure id column of procedure_versions
    _VECTOR: ClassVar[str]  # the vector column of vectors
    _ORDER: ClassVar[str]  # the insertion-order column of procedures and trajectories
    _NO_LIMIT: ClassVar[int | None]  # the LIMIT value that means no limit
    _LOCK: ClassVar[str] = ""  # appended to a procedure read that the transaction will change
    # Timestamp columns mirroring the record's fields of the same name, by table.
    _STAMPS: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # Extra select columns and join that bring a procedure's vectors with its row.
    _JOIN: ClassVar[tuple[str, str]] = ("", "")
    _UNIQUE: ClassVar[type[Exception]]  # the driver's error for a key already taken
    _WHERE_KEY: ClassVar[str]  # what stats() calls the location

    _where: str  # the store's location, for messages
    _dim: int | None = None

    # -- hooks: connections -----------------------------------------------------------

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Any]:
        """One write transaction on a raw connection or cursor."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A read (one or a few statements)."""

    def _snapshot(self) -> AbstractContextManager[Any]:
        """A read of many statements that sees one consistent state (export)."""
        return self._read()

    def _counting(self) -> AbstractContextManager[Any]:
        """Where usage counters are bumped."""
        return self._tx()

    @contextmanager
    def _on(self, raw: AbstractContextManager[Any]) -> Iterator[Tx]:
        with raw as handle:
            c = Tx(handle, self._PARAM)
            yield c
        if c.dim is not None:
            self._dim = c.dim

    # -- hooks: schema ----------------------------------------------------------------

    @abstractmethod
    def _schema_version(self, c: Tx) -> int:
        """The schema version the database holds (0: none yet)."""

    @abstractmethod
    def _apply_migration(self, c: Tx, version: int, sql: str) -> None:
        """Run one migration and record that the schema is now ``version``."""

    @abstractmethod
    def _lock_dim(self, c: Tx) -> None:
        """Keep other first writers out until this transaction has fixed the dimension."""

    def _set_dim(self, c: Tx, dim: int) -> None:
        """The first vector ever stored fixes the dimension."""
        c.run(f"INSERT INTO {self._META} (key, value) VALUES ('dim', ?)", (str(dim),))

    @abstractmethod
    def _changed(self, c: Tx, namespace: str, procedure_id: str) -> None:
        """Tell searchers (and change tokens) that a procedure's vectors or status changed."""

    # -- hooks: values ------------------------------------------------------------------

    def _encode(self, v: np.ndarray) -> Any:
        """A unit vector as the vectors table stores it."""
        return v

    def _time(self, t: datetime) -> Any:
        """A timestamp as its column takes it."""
        return t

    @staticmethod
    def _duplicate_detail(e: Exception) -> object:
        """What the driver's duplicate-key error says about the key."""
        return e

    @abstractmethod
    def _row_vectors(self, c: Tx, row: Any) -> dict[str, list[list[float]]]:
        """The stored vectors of a procedure row by kind, each kind in insertion order."""

    @abstractmethod
    def _nearest(
        self, q: np.ndarray, kind: str, k: int, namespace: str | None, environment: str | None
    ) -> list[tuple[str, float]]:
        """Top-k (procedure id, score) of a checked, normalised query; best first."""

    # -- migrations ---------------------------------------------------------------------

    def _check_schema(self, current: int, latest: int) -> None:
        if current > latest:
            raise StoreError(
                f"{self._where} was written by a newer memp (schema version {current}; this "
                f"memp knows up to {latest}); upgrade memp to open it"
            )

    def _upgrade(self, c: Tx, migrations: Sequence[str]) -> None:
        """Apply the migrations the stored schema lacks, in order (the caller holds the
        lock that keeps other migrators out); entry ``i`` makes schema version ``i + 1``."""
        current = self._schema_version(c)
        self._check_schema(current, len(migrations))
        for version in range(current + 1, len(migrations) + 1):
            self._apply_migration(c, version, migrations[version - 1])

    # -- meta: dimension and embedder -----------------------------------------------------

    def _meta(self, c: Tx, key: str) -> str | None:
        row = c.one(f"SELECT value FROM {self._META} WHERE key = ?", (key,))
        return row["value"] if row else None

    @property
    def dim(self) -> int | None:
        if self._dim is None:
            with self._on(self._read()) as c:
                value = self._meta(c, "dim")
            self._dim = int(value) if value is not None else None
        return self._dim

    @property
    def embedder_identity(self) -> dict[str, Any] | None:
        with self._on(self._read()) as c:
            value = self._meta(c, "embedder")
        return json.loads(value) if value is not None else None

    def check_embedder(self, name: str, dim: int) -> None:
        with self._on(self._tx()) as c:
            c.run(
                insert_sql(self._META, ("key", "value"), " ON CONFLICT (key) DO NOTHING"),
                ("embedder", identity(name, dim)),
            )
            check_identity(json.loads(self._meta(c, "embedder") or "{}"), name, dim, self._where)

    def _fit(self, c: Tx, v: np.ndarray, what: str) -> np.ndarray:
        """``v`` checked against the store's dimension (fixed by the first vector)."""
        if v.size == 0:
            raise InvalidInput(f"{what} is an empty vector")
        dim = c.dim or self._dim
        if dim is None:
            self._lock_dim(c)
            stored = self._meta(c, "dim")
            dim = v.size if stored is None else int(stored)
            if stored is None:
                self._set_dim(c, dim)
        c.dim = dim
        if v.size != dim:
            raise DimensionMismatch(
                f"{what} has {v.size} dimensions but the store {self._where} holds "
                f"{dim}-dimensional vectors; use the embedder the store was built with or a "
                "new store"
            )
        return v

    # -- rows -----------------------------------------------------------------------------

    def _stamps(self, table: str, record: BaseModel) -> dict[str, Any]:
        return {col: getattr(record, col) for col in self._STAMPS.get(table, ())}

    def _procedure_row(self, p: Procedure) -> dict[str, Any]:
        u = p.usage
        return {
            "id": p.id,
            "namespace": p.namespace,
            "environment": p.environment,
            "status": p.status.value,
            "version": p.version,
            self._BODY: body(p),
            "retrieved": u.retrieved,
            "succeeded": u.succeeded,
            "failed": u.failed,
            "last_used_at": self._time(u.last_used_at) if u.last_used_at else None,
            **self._stamps("procedures", p),
        }

    def _version_row(self, namespace: str, p: Procedure, reason: str) -> dict[str, Any]:
        return {
            "namespace": namespace,
            self._VERSION_ID: p.id,
            "version": p.version,
            "snapshot": snapshot(p),
        }

    def _vector_row(self, p: Procedure, kind: str, i: int, v: np.ndarray) -> dict[str, Any]:
        """The vectors row of the ``i``-th vector of one kind of ``p``."""
        return {
            "procedure_id": p.id,
            "kind": kind,
            "namespace": p.namespace,
            "environment": p.environment,
            "active": p.status == ProcedureStatus.ACTIVE,
            self._VECTOR: self._encode(v),
        }

    def _vector_rows(self, c: Tx, p: Procedure, kinds: Sequence[str] = KINDS) -> list[Any]:
        rows = []
        seen: dict[str, int] = {}
        for kind, v in vectors_of(p, kinds):
            v = self._fit(c, unit(v), f"{kind} vector of procedure {p.id}")
            i = seen[kind] = seen.get(kind, -1) + 1
            rows.append(self._vector_row(p, kind, i, v))
        return rows

    def _select(self, vectors: bool) -> str:
        extra, join = self._JOIN if vectors else ("", "")
        return (
            "SELECT p.id, p.namespace, p.status, p.retrieved, p.succeeded, p.failed, "
            f"p.last_used_at, p.{self._BODY} AS body{extra} FROM procedures p{join}"
        )

    def _procedure(self, c: Tx, row: Any, vectors: bool) -> Procedure:
        return from_columns(
            decode(row["body"]),
            status=row["status"],
            retrieved=row["retrieved"],
            succeeded=row["succeeded"],
            failed=row["failed"],
            last_used_at=row["last_used_at"],
            vectors=self._row_vectors(c, row) if vectors else None,
        )

    def _row(
        self,
        c: Tx,
        procedure_id: str,
        namespace: str | None,
        *,
        vectors: bool = False,
        lock: bool = False,
    ) -> Any:
        """The row ``procedure_id`` names (in ``namespace``, or in the only one holding it)."""
        where, args = clause("p.", [("id", procedure_id), *scope_filters(namespace)])
        sql = f"{self._select(vectors)}{where} LIMIT 2{self._LOCK if lock else ''}"
        return the_one(c.all(sql, args), "procedure", procedure_id, namespace, self._where)

    def _fetch(self, c: Tx, procedure_id: str, namespace: str | None) -> Procedure:
        return self._procedure(c, self._row(c, procedure_id, namespace, vectors=True), True)

    def _page(self, limit: int | None, offset: int) -> tuple[Any, int]:
        return (self._NO_LIMIT if limit is None else limit, int(offset))

    # -- procedures ---------------------------------------------------------------------

    def _insert_procedures(self, c: Tx, procedures: Sequence[Procedure]) -> None:
        try:
            insert(c, "procedures", [self._procedure_row(p) for p in procedures])
        except self._UNIQUE as e:
            raise duplicate_procedure(self._duplicate_detail(e)) from e

    def _add(self, c: Tx, procedures: Sequence[Procedure]) -> None:
        vectors = [row for p in procedures for row in self._vector_rows(c, p)]
        self._insert_procedures(c, procedures)
        insert(c, "vectors", vectors)

    def add(self, procedures: Sequence[Procedure]) -> None:
        if isinstance(procedures, Procedure):
            procedures = [procedures]
        if not procedures:
            return
        with self._on(self._tx()) as c:
            self._add(c, procedures)

    def get(self, procedure_id: str, *, namespace: str | None = None) -> Procedure:
        with self._on(self._read()) as c:
            return self._fetch(c, procedure_id, namespace)

    def update(self, procedure: Procedure, *, reason: str = "") -> Procedure:
        """Store ``procedure`` as the next version; usage, status and namespace stay as
        stored, and vector kinds the new record leaves empty keep their stored vectors
        (a rewrite of the script does not change what the task embeds to)."""
        with self._on(self._tx()) as c:
            # Locked: two concurrent updates of one procedure get distinct versions.
            row = self._row(c, procedure.id, procedure.namespace, lock=True)
            ns = row["namespace"]
            old = self._procedure(c, row, vectors=False)
            version = self._version_row(ns, old, reason)
            c.run(insert_sql("procedure_versions", version), tuple(version.values()))
            new = next_version(old, procedure, reason)
            kinds = given_kinds(new)
            if kinds:
                c.run(
                    "DELETE FROM vectors WHERE namespace = ? AND procedure_id = ? "
                    f"AND kind IN ({', '.join('?' * len(kinds))})",
                    (ns, new.id, *kinds),
                )
                insert(c, "vectors", self._vector_rows(c, new, kinds))
            edit = {k: v for k, v in self._procedure_row(new).items() if k not in _KEPT}
            c.run(
                f"UPDATE procedures SET {', '.join(f'{k} = ?' for k in edit)} "
                "WHERE namespace = ? AND id = ?",
                (*edit.values(), ns, new.id),
            )
            c.run(
                "UPDATE vectors SET environment = ? WHERE namespace = ? AND procedure_id = ?",
                (new.environment, ns, new.id),
            )
            self._changed(c, ns, new.id)
            return self._fetch(c, new.id, ns)

    def history(self, procedure_id: str, *, namespace: str | None = None) -> list[Procedure]:
        """Every version of a procedure, oldest first, the current one last."""
        with self._on(self._read()) as c:
            row = self._row(c, procedure_id, namespace)
            current = self._procedure(c, row, vectors=False)
            older = c.all(
                f"SELECT snapshot FROM procedure_versions WHERE namespace = ? AND "
                f"{self._VERSION_ID} = ? ORDER BY version",
                (row["namespace"], procedure_id),
            )
        return [*(model(Procedure, r["snapshot"]) for r in older), current]

    def list(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
        limit: int | None = None,
        offset: int = 0,
        vectors: bool = False,
    ) -> list[Procedure]:
        """Procedures in insertion order; ``vectors=True`` also loads their embeddings."""
        where, args = clause("p.", scope_filters(namespace, environment, status))
        sql = f"{self._select(vectors)}{where} ORDER BY p.{self._ORDER} LIMIT ? OFFSET ?"
        with self._on(self._read()) as c:
            rows = c.all(sql, (*args, *self._page(limit, offset)))
            return [self._procedure(c, r, vectors) for r in rows]

    def count(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
    ) -> int:
        where, args = clause("", scope_filters(namespace, environment, status))
        with self._on(self._read()) as c:
            return int(c.one(f"SELECT count(*) AS n FROM procedures{where}", args)["n"])

    def set_status(
        self, procedure_id: str, status: ProcedureStatus, *, namespace: str | None = None
    ) -> Procedure:
        status = ProcedureStatus(status)
        with self._on(self._tx()) as c:
            ns = self._row(c, procedure_id, namespace, lock=True)["namespace"]
            c.run(
                "UPDATE procedures SET status = ? WHERE namespace = ? AND id = ?",
                (status.value, ns, procedure_id),
            )
            c.run(
                "UPDATE vectors SET active = ? WHERE namespace = ? AND procedure_id = ?",
                (status == ProcedureStatus.ACTIVE, ns, procedure_id),
            )
            self._changed(c, ns, procedure_id)
            return self._fetch(c, procedure_id, ns)

    def record_usage(
        self,
        procedure_id: str,
        *,
        retrieved: int = 0,
        succeeded: int = 0,
        failed: int = 0,
        namespace: str | None = None,
    ) -> None:
        with self._on(self._counting()) as c:
            # Without a namespace: the one holding the id (an id held by two is refused).
            ns = (
                namespace
                if namespace is not None
                else self._row(c, procedure_id, None)["namespace"]
            )
            # One UPDATE adding to the counters: concurrent reporters cannot lose increments.
            done = c.run(
                "UPDATE procedures SET retrieved = retrieved + ?, succeeded = succeeded + ?, "
                "failed = failed + ?, last_used_at = ? WHERE namespace = ? AND id = ?",
                (int(retrieved), int(succeeded), int(failed), self._time(now()), ns, procedure_id),
            )
            if done.rowcount == 0:
                raise procedure_not_found(procedure_id, namespace, self._where)

    # -- vector search --------------------------------------------------------------------

    def search(
        self,
        vector: np.ndarray,
        *,
        kind: VectorKind = "task",
        k: int = 10,
        namespace: str | None = None,
        environment: str | None = None,
    ) -> list[tuple[str, float]]:
        q = query_vector(vector, kind)
        dim = self.dim
        if dim is None:
            return []
        if q.size != dim:
            raise DimensionMismatch(
                f"query vector has {q.size} dimensions but the store {self._where} holds "
                f"{dim}-dimensional vectors; use the embedder the store was built with"
            )
        if k <= 0:
            return []
        return self._nearest(q, kind, k, namespace, environment)

    # -- trajectories ---------------------------------------------------------------------

    def add_trajectory(self, trajectory: Trajectory, *, namespace: str = "default") -> None:
        """Store (or replace, by id within ``namespace``) a trajectory."""
        with self._on(self._tx()) as c:
            self._put_trajectory(c, trajectory, namespace)

    def _put_trajectory(self, c: Tx, t: Trajectory, namespace: str) -> None:
        row = {
            "id": t.id,
            "namespace": namespace,
            "environment": t.environment,
            self._BODY: t.model_dump_json(),
            **self._stamps("trajectories", t),
        }
        # An upsert, so a replaced trajectory keeps its place in the listing.
        b = self._BODY
        tail = (
            " ON CONFLICT (namespace, id) DO UPDATE SET "
            f"environment = excluded.environment, {b} = excluded.{b}"
        )
        c.run(insert_sql("trajectories", row, tail), tuple(row.values()))

    def get_trajectory(self, trajectory_id: str, *, namespace: str | None = None) -> Trajectory:
        where, args = clause("", [("id", trajectory_id), *scope_filters(namespace)])
        with self._on(self._read()) as c:
            rows = c.all(f"SELECT {self._BODY} AS body FROM trajectories{where} LIMIT 2", args)
        row = the_one(rows, "trajectory", trajectory_id, namespace, self._where)
        return model(Trajectory, row["body"])

    def list_trajectories(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trajectory]:
        where, args = clause("", scope_filters(namespace, environment))
        sql = f"SELECT {self._BODY} AS body FROM trajectories{where} ORDER BY {self._ORDER}"
        with self._on(self._read()) as c:
            rows = c.all(f"{sql} LIMIT ? OFFSET ?", (*args, *self._page(limit, offset)))
        return [model(Trajectory, r["body"]) for r in rows]

    # -- export / import (exact) ------------------------------------------------------------

    def export_records(self, *, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Every stored record as plain dicts: procedures (with vectors), their earlier
        versions and trajectories. :meth:`import_records` restores them exactly."""
        scope = scope_filters(namespace)
        where, args = clause("", scope)
        with self._on(self._snapshot()) as c:
            versions: dict[tuple[str, str], list[Any]] = {}
            for v in c.all(
                f"SELECT namespace, {self._VERSION_ID} AS id, snapshot FROM procedure_versions"
                f"{where} ORDER BY namespace, {self._VERSION_ID}, version",
                args,
            ):
                versions.setdefault((v["namespace"], v["id"]), []).append(v["snapshot"])
            p_where, _ = clause("p.", scope)
            for r in c.all(f"{self._select(True)}{p_where} ORDER BY p.{self._ORDER}", args):
                p = self._procedure(c, r, vectors=True)
                for snap in versions.get((p.namespace, p.id), []):
                    yield version_record(decode(snap))
                yield procedure_record(p)
            for r in c.all(
                f"SELECT namespace, {self._BODY} AS body FROM trajectories{where} "
                f"ORDER BY {self._ORDER}",
                args,
            ):
                yield trajectory_record(r["namespace"], decode(r["body"]))

    def import_records(
        self,
        records: Iterable[dict[str, Any]],
        *,
        replace: bool = False,
        namespace: str | None = None,
    ) -> int:
        """Restore records from :meth:`export_records` in one transaction; returns how many.

        Each record goes to its own namespace and touches nothing outside it; with
        ``namespace`` every record must belong to that one. An id that already exists
        in the namespace is an error unless ``replace`` is true.
        """
        with self._on(self._tx()) as c:

            def has(ns: str, pid: str) -> bool:
                sql = "SELECT 1 AS found FROM procedures WHERE namespace = ? AND id = ?"
                return c.one(sql, (ns, pid)) is not None

            def drop(ns: str, pid: str) -> None:
                c.run("DELETE FROM vectors WHERE namespace = ? AND procedure_id = ?", (ns, pid))
                c.run("DELETE FROM procedures WHERE namespace = ? AND id = ?", (ns, pid))
                self._changed(c, ns, pid)

            def put_version(p: Procedure, replace: bool) -> bool:
                row = self._version_row(p.namespace, p, "")
                tail = f" ON CONFLICT (namespace, {self._VERSION_ID}, version) " + (
                    "DO UPDATE SET snapshot = excluded.snapshot" if replace else "DO NOTHING"
                )
                return (
                    c.run(insert_sql("procedure_versions", row, tail), tuple(row.values())).rowcount
                    > 0
                )

            return run_import(
                records,
                replace=replace,
                namespace=namespace,
                where=self._where,
                has=has,
                drop=drop,
                insert=lambda p: self._add(c, [p]),
                put_version=put_version,
                put_trajectory=lambda t, ns: self._put_trajectory(c, t, ns),
            )

    # -- maintenance ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        def n(table: str) -> int:
            return int(c.one(f"SELECT count(*) AS n FROM {table}")["n"])

        with self._on(self._read()) as c:
            dim, embedder = self._meta(c, "dim"), self._meta(c, "embedder")
            by_status = c.all("SELECT status, count(*) AS n FROM procedures GROUP BY status")
            return {
                self._WHERE_KEY: self._where,
                "schema_version": self._schema_version(c),
                "dim": int(dim) if dim is not None else None,
                "embedder": json.loads(embedder) if embedder is not None else None,
                "procedures": {r["status"]: r["n"] for r in by_status},
                "versions": n("procedure_versions"),
                "vectors": n("vectors"),
                "trajectories": n("trajectories"),
                "namespaces": [
                    r["namespace"]
                    for r in c.all("SELECT DISTINCT namespace FROM procedures ORDER BY 1")
                ],
            }

    @abstractmethod
    def close(self) -> None:
        """Release the store's connections and caches."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
