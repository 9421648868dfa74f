"""The embedded default store: one SQLite file.

- WAL journal, a busy timeout, and ``BEGIN IMMEDIATE`` for every write, so many
  processes can write at once; each write is one transaction, so a process killed
  mid-write leaves either all of it or none of it.
- Numbered schema migrations, the version kept in ``PRAGMA user_version``; a file
  written by a newer memp is refused instead of being misread.
- Vectors are float32 blobs. Exact search is one matrix-vector product over an
  in-memory matrix per vector kind plus ``np.argpartition``. The matrix is refreshed
  incrementally: new vectors are found by their monotonically increasing ``seq`` and
  edits (updates, retirements) through the ``changes`` log, so writes by other
  processes are seen on the next search without reloading everything.
- Usage counters are single ``UPDATE ... SET n = n + ?`` statements: atomic across
  processes.
- Records are keyed by (namespace, id): ids are unique within a namespace only.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

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
    unit_rows,
    vectors_of,
    version_record,
)
from memp.types import Procedure, ProcedureStatus, Trajectory, Usage, now

# Each entry is one schema version; never edit a released entry, append a new one.
MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE procedures (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        environment TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        retrieved INTEGER NOT NULL DEFAULT 0,
        succeeded INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        last_used_at TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX procedures_scope ON procedures(namespace, environment, status);
    CREATE TABLE procedure_versions (
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (id, version)
    );
    CREATE TABLE vectors (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        procedure_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        namespace TEXT NOT NULL,
        environment TEXT NOT NULL,
        active INTEGER NOT NULL,
        vec BLOB NOT NULL
    );
    CREATE INDEX vectors_procedure ON vectors(procedure_id);
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        procedure_id TEXT NOT NULL
    );
    CREATE TABLE trajectories (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        environment TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX trajectories_scope ON trajectories(namespace, environment);
    """,
    # 2: records keyed by (namespace, id), so one namespace can neither reach nor detect
    # another's ids. Tables are rebuilt keeping their rowids (the listing order); a
    # version takes the namespace its snapshot was written in.
    """
    CREATE TABLE procedures_v2 (
        id TEXT NOT NULL,
        namespace TEXT NOT NULL,
        environment TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        retrieved INTEGER NOT NULL DEFAULT 0,
        succeeded INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        last_used_at TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (namespace, id)
    );
    INSERT INTO procedures_v2 (rowid, id, namespace, environment, status, version, retrieved,
        succeeded, failed, last_used_at, body)
        SELECT rowid, id, namespace, environment, status, version, retrieved, succeeded, failed,
        last_used_at, body FROM procedures;
    DROP TABLE procedures;
    ALTER TABLE procedures_v2 RENAME TO procedures;
    CREATE INDEX procedures_scope ON procedures(namespace, environment, status);
    CREATE TABLE procedure_versions_v2 (
        namespace TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (namespace, id, version)
    );
    INSERT INTO procedure_versions_v2 (namespace, id, version, snapshot)
        SELECT coalesce(json_extract(snapshot, '$.namespace'), 'default'), id, version, snapshot
        FROM procedure_versions;
    DROP TABLE procedure_versions;
    ALTER TABLE procedure_versions_v2 RENAME TO procedure_versions;
    CREATE TABLE trajectories_v2 (
        id TEXT NOT NULL,
        namespace TEXT NOT NULL,
        environment TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (namespace, id)
    );
    INSERT INTO trajectories_v2 (rowid, id, namespace, environment, body)
        SELECT rowid, id, namespace, environment, body FROM trajectories;
    DROP TABLE trajectories;
    ALTER TABLE trajectories_v2 RENAME TO trajectories;
    CREATE INDEX trajectories_scope ON trajectories(namespace, environment);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

_INSERT_PROCEDURE = (
    "INSERT INTO procedures(id, namespace, environment, status, version, retrieved, "
    "succeeded, failed, last_used_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _procedure_row(p: Procedure) -> tuple[Any, ...]:
    """The ``procedures`` row of a procedure, in :data:`_INSERT_PROCEDURE` order."""
    u = p.usage
    last_used = u.last_used_at.isoformat() if u.last_used_at else None
    head = (p.id, p.namespace, p.environment, p.status.value, p.version)
    return (*head, u.retrieved, u.succeeded, u.failed, last_used, body(p))


class _VectorCache:
    """The in-memory float32 matrix of one vector kind plus per-row filters."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.mat = np.empty((0, dim), dtype=np.float32)
        self.n = 0
        self.ids: list[str] = []
        self.ns = np.empty(0, dtype=np.int32)
        self.env = np.empty(0, dtype=np.int32)
        self.alive = np.empty(0, dtype=bool)
        self.rows_of: dict[str, list[int]] = {}
        self.codes: dict[str, int] = {}
        self.dead = 0
        self.last_vec = 0
        self.last_change = 0

    def code(self, name: str) -> int:
        c = self.codes.get(name)
        if c is None:
            c = self.codes[name] = len(self.codes)
        return c

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= self.mat.shape[0]:
            return
        cap = max(need, int(self.mat.shape[0] * 1.5) + 1024)
        for name, dtype in (("ns", np.int32), ("env", np.int32), ("alive", bool)):
            arr = np.zeros(cap, dtype=dtype)
            arr[: self.n] = getattr(self, name)[: self.n]
            setattr(self, name, arr)
        mat = np.empty((cap, self.dim), dtype=np.float32)
        mat[: self.n] = self.mat[: self.n]
        self.mat = mat

    def kill(self, procedure_id: str) -> None:
        for r in self.rows_of.pop(procedure_id, ()):
            if self.alive[r]:
                self.alive[r] = False
                self.dead += 1

    def append(self, rows: list[tuple[str, str, str, int, bytes]]) -> None:
        if not rows:
            return
        self._reserve(len(rows))
        start = self.n
        end = start + len(rows)
        self.mat[start:end] = np.frombuffer(b"".join(r[4] for r in rows), dtype=np.float32).reshape(
            len(rows), self.dim
        )
        self.ns[start:end] = [self.code(r[1]) for r in rows]
        self.env[start:end] = [self.code(r[2]) for r in rows]
        self.alive[start:end] = [bool(r[3]) for r in rows]
        for i, r in enumerate(rows, start):
            self.ids.append(r[0])
            self.rows_of.setdefault(r[0], []).append(i)
            if not r[3]:
                self.dead += 1
        self.n = end

    def search(
        self, q: np.ndarray, k: int, namespace: str | None, environment: str | None, distinct: bool
    ) -> list[tuple[str, float]]:
        n = self.n
        if n == 0 or k <= 0:
            return []
        scores = self.mat[:n] @ q
        mask: np.ndarray | None = None
        if self.dead:
            mask = self.alive[:n]
        for name, codes in ((namespace, self.ns), (environment, self.env)):
            if name is None:
                continue
            c = self.codes.get(name)
            if c is None:
                return []
            m = codes[:n] == c
            mask = m if mask is None else (mask & m)
        valid = n
        if mask is not None:
            valid = int(np.count_nonzero(mask))
            if valid == 0:
                return []
            scores[~mask] = -np.inf
        # Facts: several rows per procedure, so over-fetch rows and keep the best per id.
        want = min(valid, k * 8 if distinct else k)
        while True:
            # argpartition on the scores themselves (no negated copy of a 1M array).
            top = np.argpartition(scores, n - want)[n - want :] if want < n else np.arange(n)
            top = top[np.argsort(-scores[top], kind="stable")]
            out: list[tuple[str, float]] = []
            seen: set[str] = set()
            for r in top:
                s = float(scores[r])
                if s == -np.inf:
                    break
                pid = self.ids[r]
                if pid in seen:
                    continue
                seen.add(pid)
                out.append((pid, s))
                if len(out) == k:
                    return out
            if want >= valid:
                return out
            want = min(valid, want * 4)


class SQLiteStore:
    """A :class:`memp.store.base.MemoryStore` in one SQLite file (thread-safe)."""

    def __init__(self, path: str | Path = "memp.db", *, timeout: float = 30.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            p = Path(self.path)
            if p.is_dir():
                raise InvalidInput(
                    f"store path {p} is a directory; give a file name like {p}/memp.db"
                )
            p.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot open SQLite store {self.path}: {e}") from e
        self._lock = threading.RLock()
        self._caches: dict[str, _VectorCache] = {}
        self._dim: int | None = None
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        try:
            c.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a memp SQLite store ({e})") from e
        # NORMAL in WAL mode: a killed process loses nothing committed (the OS holds the
        # WAL pages); only a power cut may drop the last transactions.
        c.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    # -- plumbing -------------------------------------------------------------

    def _migrate(self) -> None:
        current = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer memp (schema version {current}; this "
                f"memp knows up to {SCHEMA_VERSION}); upgrade memp to open it"
            )
        if current == SCHEMA_VERSION:
            return
        with self._write() as c:
            # Re-read inside the write lock: another process may have migrated meanwhile.
            current = c.execute("PRAGMA user_version").fetchone()[0]
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[version - 1].split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(f"PRAGMA user_version = {version}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # One read transaction = one consistent WAL snapshot across several SELECTs.
        with self._lock:
            c = self._conn
            c.execute("BEGIN")
            try:
                yield c
            finally:
                c.execute("COMMIT")

    @property
    def dim(self) -> int | None:
        if self._dim is None:
            with self._lock:
                row = self._conn.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()
            self._dim = int(row[0]) if row else None
        return self._dim

    @property
    def embedder_identity(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
        return json.loads(row[0]) if row else None

    def check_embedder(self, name: str, dim: int) -> None:
        with self._write() as c:
            c.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('embedder', ?)",
                (identity(name, dim),),
            )
            row = c.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
            check_identity(json.loads(row[0]), name, dim, self.path)

    def _blob(self, c: sqlite3.Connection, vector: Any, what: str) -> bytes:
        v = np.asarray(vector, dtype=np.float32).ravel()
        row = c.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()
        if row is None:
            if v.size == 0:
                raise InvalidInput(f"{what} is an empty vector")
            c.execute("INSERT INTO meta(key, value) VALUES ('dim', ?)", (str(v.size),))
            dim = v.size
        else:
            dim = int(row[0])
        if v.size != dim:
            raise DimensionMismatch(
                f"{what} has {v.size} dimensions but the store {self.path} holds {dim}-dimensional "
                "vectors; use the embedder the store was built with or a new store file"
            )
        self._dim = dim
        return unit(v).tobytes()

    def _vector_rows(
        self, c: sqlite3.Connection, p: Procedure, kinds: Sequence[str] = KINDS
    ) -> list[tuple[str, str, str, str, int, bytes]]:
        active = int(p.status == ProcedureStatus.ACTIVE)
        rows = []
        for kind, v in vectors_of(p, kinds):
            blob = self._blob(c, v, f"{kind} vector of procedure {p.id}")
            rows.append((p.id, kind, p.namespace, p.environment, active, blob))
        return rows

    def _insert_vectors(self, c: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        c.executemany(
            "INSERT INTO vectors(procedure_id, kind, namespace, environment, active, vec) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _row_to_procedure(self, row: sqlite3.Row | tuple[Any, ...], vectors: bool) -> Procedure:
        pid, status, retrieved, succeeded, failed, last_used, data = row
        fields = json.loads(data)
        return from_columns(
            fields,
            status=status,
            retrieved=retrieved,
            succeeded=succeeded,
            failed=failed,
            last_used_at=last_used,
            vectors=self._load_vectors(fields["namespace"], pid) if vectors else None,
        )

    def _load_vectors(self, namespace: str, pid: str) -> dict[str, list[list[float]]]:
        """The stored vectors of a procedure by kind, each kind in insertion order."""
        out: dict[str, list[list[float]]] = {}
        for kind, blob in self._conn.execute(
            "SELECT kind, vec FROM vectors WHERE namespace = ? AND procedure_id = ? ORDER BY seq",
            (namespace, pid),
        ):
            out.setdefault(kind, []).append(np.frombuffer(blob, dtype=np.float32).tolist())
        return out

    _COLS = "id, status, retrieved, succeeded, failed, last_used_at, body"

    # -- procedures -----------------------------------------------------------

    def add(self, procedures: Sequence[Procedure]) -> None:
        if isinstance(procedures, Procedure):
            procedures = [procedures]
        with self._write() as c:
            vec_rows = [row for p in procedures for row in self._vector_rows(c, p)]
            try:
                c.executemany(_INSERT_PROCEDURE, [_procedure_row(p) for p in procedures])
            except sqlite3.IntegrityError as e:
                raise duplicate_procedure(e) from e
            self._insert_vectors(c, vec_rows)

    def bulk_add(self, procedures: Sequence[Procedure], task_vectors: np.ndarray) -> None:
        """Fast path for loading many procedures at once (one transaction): their task
        vectors come as one (n, dim) array instead of lists inside each record."""
        vecs = np.ascontiguousarray(task_vectors, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(procedures):
            raise InvalidInput(
                f"task_vectors must have shape ({len(procedures)}, dim), got {vecs.shape}"
            )
        vecs = unit_rows(vecs)
        with self._write() as c:
            if len(procedures):
                self._blob(c, vecs[0], "task vector")  # sets / checks the store's dimension
            rows = [
                (p.id, p.namespace, p.environment, p.status.value, p.version, body(p))
                for p in procedures
            ]
            try:
                c.executemany(
                    "INSERT INTO procedures(id, namespace, environment, status, version, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except sqlite3.IntegrityError as e:
                raise duplicate_procedure(e) from e
            self._insert_vectors(
                c,
                [
                    (
                        p.id,
                        "task",
                        p.namespace,
                        p.environment,
                        int(p.status == ProcedureStatus.ACTIVE),
                        vecs[i].tobytes(),
                    )
                    for i, p in enumerate(procedures)
                ],
            )

    def _current(self, c: sqlite3.Connection, pid: str, namespace: str | None) -> tuple[Any, ...]:
        """The procedure's row, its namespace last (``row[7]``)."""
        sql = f"SELECT {self._COLS}, namespace FROM procedures WHERE id = ?"
        args: list[Any] = [pid]
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        rows = c.execute(sql + " LIMIT 2", args).fetchall()
        return the_one(rows, "procedure", pid, namespace, self.path)

    def get(self, procedure_id: str, *, namespace: str | None = None) -> Procedure:
        with self._read() as c:
            row = self._current(c, procedure_id, namespace)
            return self._row_to_procedure(row[:7], vectors=True)

    def update(self, procedure: Procedure, *, reason: str = "") -> Procedure:
        """Store ``procedure`` as the next version; usage and status stay as stored.

        Vector kinds the new record leaves empty keep their stored vectors (a rewrite of
        the script does not change what the task embeds to).
        """
        with self._write() as c:
            row = self._current(c, procedure.id, procedure.namespace)
            ns = row[7]
            old = self._row_to_procedure(row[:7], vectors=False)
            c.execute(
                "INSERT INTO procedure_versions(namespace, id, version, snapshot) "
                "VALUES (?, ?, ?, ?)",
                (ns, old.id, old.version, snapshot(old)),
            )
            new = next_version(old, procedure, reason)
            kinds = given_kinds(new)
            vec_rows = self._vector_rows(c, new, kinds)
            if kinds:
                c.execute(
                    "DELETE FROM vectors WHERE namespace = ? AND procedure_id = ? "
                    f"AND kind IN ({','.join('?' * len(kinds))})",
                    (ns, new.id, *kinds),
                )
                self._insert_vectors(c, vec_rows)
            c.execute(
                "UPDATE procedures SET environment = ?, version = ?, body = ? "
                "WHERE namespace = ? AND id = ?",
                (new.environment, new.version, body(new), ns, new.id),
            )
            c.execute(
                "UPDATE vectors SET environment = ? WHERE namespace = ? AND procedure_id = ?",
                (new.environment, ns, new.id),
            )
            c.execute("INSERT INTO changes(procedure_id) VALUES (?)", (new.id,))
        return self.get(new.id, namespace=ns)

    def history(self, procedure_id: str, *, namespace: str | None = None) -> list[Procedure]:
        """Every version of a procedure, oldest first, the current one last."""
        with self._read() as c:
            row = self._current(c, procedure_id, namespace)
            current = self._row_to_procedure(row[:7], False)
            rows = c.execute(
                "SELECT snapshot FROM procedure_versions WHERE namespace = ? AND id = ? "
                "ORDER BY version",
                (row[7], procedure_id),
            ).fetchall()
        return [Procedure.model_validate_json(r[0]) for r in rows] + [current]

    @staticmethod
    def _scope(
        namespace: str | None, environment: str | None, status: ProcedureStatus | None
    ) -> tuple[str, list[Any]]:
        filters = scope_filters(namespace, environment, status)
        where = " AND ".join(f"{col} = ?" for col, _ in filters)
        return (f" WHERE {where}" if where else ""), [val for _, val in filters]

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
        where, args = self._scope(namespace, environment, status)
        sql = f"SELECT {self._COLS} FROM procedures{where} ORDER BY rowid LIMIT ? OFFSET ?"
        with self._read() as c:
            rows = c.execute(sql, (*args, -1 if limit is None else limit, offset)).fetchall()
            return [self._row_to_procedure(r, vectors) for r in rows]

    def count(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
    ) -> int:
        where, args = self._scope(namespace, environment, status)
        with self._lock:
            return self._conn.execute(f"SELECT count(*) FROM procedures{where}", args).fetchone()[0]

    def set_status(
        self, procedure_id: str, status: ProcedureStatus, *, namespace: str | None = None
    ) -> Procedure:
        status = ProcedureStatus(status)
        with self._write() as c:
            ns = self._current(c, procedure_id, namespace)[7]
            c.execute(
                "UPDATE procedures SET status = ? WHERE namespace = ? AND id = ?",
                (status.value, ns, procedure_id),
            )
            c.execute(
                "UPDATE vectors SET active = ? WHERE namespace = ? AND procedure_id = ?",
                (int(status == ProcedureStatus.ACTIVE), ns, procedure_id),
            )
            c.execute("INSERT INTO changes(procedure_id) VALUES (?)", (procedure_id,))
        return self.get(procedure_id, namespace=ns)

    def record_usage(
        self,
        procedure_id: str,
        *,
        retrieved: int = 0,
        succeeded: int = 0,
        failed: int = 0,
        namespace: str | None = None,
    ) -> None:
        sql = (
            "UPDATE procedures SET retrieved = retrieved + ?, succeeded = succeeded + ?, "
            "failed = failed + ?, last_used_at = ? WHERE namespace = ? AND id = ?"
        )
        with self._write() as c:
            ns = namespace if namespace is not None else self._current(c, procedure_id, None)[7]
            args = (retrieved, succeeded, failed, now().isoformat(), ns, procedure_id)
            if c.execute(sql, args).rowcount == 0:
                raise procedure_not_found(procedure_id, namespace, self.path)

    # -- vector search ----------------------------------------------------------
    # The cache is keyed by procedure id across namespaces: a change to an id reloads
    # that id's rows in every namespace, which is always correct (and rarely more).

    def _refresh(self, kind: str) -> _VectorCache | None:
        dim = self.dim
        if dim is None:
            return None
        cache = self._caches.get(kind)
        if cache is None:
            cache = self._caches[kind] = _VectorCache(dim)
        with self._read() as c:
            vmax = c.execute("SELECT coalesce(max(seq), 0) FROM vectors").fetchone()[0]
            cmax = c.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
            if vmax == cache.last_vec and cmax == cache.last_change:
                return cache
            cols = "procedure_id, namespace, environment, active, vec"
            changed = {
                r[0]
                for r in c.execute(
                    "SELECT DISTINCT procedure_id FROM changes WHERE seq > ?", (cache.last_change,)
                )
            }
            if cache.n and len(changed) > cache.n // 4:
                # Many edits: a full reload is cheaper than patching row by row.
                cache = self._caches[kind] = _VectorCache(dim)
                changed = set()
            for pid in changed:
                cache.kill(pid)
            fresh = c.execute(
                f"SELECT {cols} FROM vectors WHERE kind = ? AND seq > ? AND seq <= ? ORDER BY seq",
                (kind, cache.last_vec, vmax),
            ).fetchall()
            cache.append([r for r in fresh if r[0] not in changed])
            ids = list(changed)
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                cache.append(
                    c.execute(
                        f"SELECT {cols} FROM vectors WHERE kind = ? AND seq <= ? AND procedure_id "
                        f"IN ({','.join('?' * len(chunk))}) ORDER BY seq",
                        (kind, vmax, *chunk),
                    ).fetchall()
                )
            cache.last_vec, cache.last_change = vmax, cmax
            if cache.dead > max(1024, cache.n // 2):
                self._caches[kind] = _VectorCache(dim)  # compact: reload on the next search
        return cache

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
        with self._lock:
            cache = self._refresh(kind)
            if cache is None:
                return []
            if q.size != cache.dim:
                raise DimensionMismatch(
                    f"query vector has {q.size} dimensions but the store {self.path} holds "
                    f"{cache.dim}-dimensional vectors; use the embedder the store was built with"
                )
            return cache.search(q, k, namespace, environment, distinct=(kind == "fact"))

    def change_token(self) -> tuple[int, int, int]:
        """Changes whenever anything searchable changed (lets callers cache derived indexes)."""
        with self._read() as c:
            return (
                c.execute("SELECT coalesce(max(seq), 0) FROM vectors").fetchone()[0],
                c.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0],
                c.execute("SELECT count(*) FROM procedures").fetchone()[0],
            )

    # -- trajectories ---------------------------------------------------------

    def add_trajectory(self, trajectory: Trajectory, *, namespace: str = "default") -> None:
        """Store (or replace, by id within ``namespace``) a trajectory."""
        with self._write() as c:
            self._put_trajectory(c, trajectory, namespace)

    @staticmethod
    def _put_trajectory(c: sqlite3.Connection, t: Trajectory, namespace: str) -> None:
        # An upsert, so a replaced trajectory keeps its place in the listing.
        c.execute(
            "INSERT INTO trajectories(id, namespace, environment, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(namespace, id) DO UPDATE SET environment = excluded.environment, "
            "body = excluded.body",
            (t.id, namespace, t.environment, t.model_dump_json()),
        )

    def get_trajectory(self, trajectory_id: str, *, namespace: str | None = None) -> Trajectory:
        sql, args = "SELECT body FROM trajectories WHERE id = ?", [trajectory_id]
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        with self._lock:
            rows = self._conn.execute(sql + " LIMIT 2", args).fetchall()
        row = the_one(rows, "trajectory", trajectory_id, namespace, self.path)
        return Trajectory.model_validate_json(row[0])

    def list_trajectories(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trajectory]:
        where, args = self._scope(namespace, environment, None)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT body FROM trajectories{where} ORDER BY rowid LIMIT ? OFFSET ?",
                (*args, -1 if limit is None else limit, offset),
            ).fetchall()
        return [Trajectory.model_validate_json(r[0]) for r in rows]

    # -- export / import (exact) ------------------------------------------------

    def export_records(self, *, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Every stored record as plain dicts: procedures (with vectors), their earlier
        versions and trajectories. :meth:`import_records` restores them exactly."""
        where, args = self._scope(namespace, None, None)
        with self._read() as c:
            rows = c.execute(
                f"SELECT {self._COLS} FROM procedures{where} ORDER BY rowid", args
            ).fetchall()
            for r in rows:
                p = self._row_to_procedure(r, vectors=True)
                for (snap,) in c.execute(
                    "SELECT snapshot FROM procedure_versions WHERE namespace = ? AND id = ? "
                    "ORDER BY version",
                    (p.namespace, p.id),
                ):
                    yield version_record(json.loads(snap))
                yield procedure_record(p)
            for ns, data in c.execute(
                f"SELECT namespace, body FROM trajectories{where} ORDER BY rowid", args
            ):
                yield trajectory_record(ns, json.loads(data))

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
        with self._write() as c:

            def has(ns: str, pid: str) -> bool:
                sql = "SELECT 1 FROM procedures WHERE namespace = ? AND id = ?"
                return c.execute(sql, (ns, pid)).fetchone() is not None

            def drop(ns: str, pid: str) -> None:
                c.execute("DELETE FROM procedures WHERE namespace = ? AND id = ?", (ns, pid))
                c.execute("DELETE FROM vectors WHERE namespace = ? AND procedure_id = ?", (ns, pid))
                c.execute("INSERT INTO changes(procedure_id) VALUES (?)", (pid,))

            def insert(p: Procedure) -> None:
                c.execute(_INSERT_PROCEDURE, _procedure_row(p))
                self._insert_vectors(c, self._vector_rows(c, p))

            def put_version(p: Procedure, replace: bool) -> bool:
                verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
                return (
                    c.execute(
                        f"{verb} INTO procedure_versions(namespace, id, version, snapshot) "
                        "VALUES (?, ?, ?, ?)",
                        (p.namespace, p.id, p.version, snapshot(p)),
                    ).rowcount
                    > 0
                )

            return run_import(
                records,
                replace=replace,
                namespace=namespace,
                where=self.path,
                has=has,
                drop=drop,
                insert=insert,
                put_version=put_version,
                put_trajectory=lambda t, ns: self._put_trajectory(c, t, ns),
            )

    # -- maintenance ------------------------------------------------------------

    def integrity_check(self) -> str:
        with self._lock:
            return self._conn.execute("PRAGMA integrity_check").fetchone()[0]

    def stats(self) -> dict[str, Any]:
        with self._read() as c:
            by_status = dict(
                c.execute("SELECT status, count(*) FROM procedures GROUP BY status").fetchall()
            )
            return {
                "path": self.path,
                "schema_version": SCHEMA_VERSION,
                "dim": self.dim,
                "embedder": self.embedder_identity,
                "procedures": by_status,
                "versions": c.execute("SELECT count(*) FROM procedure_versions").fetchone()[0],
                "vectors": c.execute("SELECT count(*) FROM vectors").fetchone()[0],
                "trajectories": c.execute("SELECT count(*) FROM trajectories").fetchone()[0],
                "namespaces": [
                    r[0] for r in c.execute("SELECT DISTINCT namespace FROM procedures ORDER BY 1")
                ],
            }

    def close(self) -> None:
        with self._lock:
            self._caches.clear()
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore", "Usage"]
