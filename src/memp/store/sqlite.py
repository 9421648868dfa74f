"""The embedded default store: one SQLite file.

The record logic lives in :mod:`memp.store.sql` (shared with PostgreSQL); this module
is the SQLite side of it: the connection, the schema and exact search in numpy.

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

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from memp.errors import InvalidInput, StoreError
from memp.store.records import unit_rows
from memp.store.sql import SqlStore, Tx, insert
from memp.types import Procedure, Usage

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


class SQLiteStore(SqlStore):
    """A :class:`memp.store.base.MemoryStore` in one SQLite file (thread-safe)."""

    _META = "meta"
    _BODY = "body"
    _VERSION_ID = "id"
    _VECTOR = "vec"
    _ORDER = "rowid"
    _NO_LIMIT = -1
    _UNIQUE = sqlite3.IntegrityError
    _WHERE_KEY = "path"

    def __init__(self, path: str | Path = "memp.db", *, timeout: float = 30.0) -> None:
        self.path = self._where = str(path)
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
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._caches: dict[str, _VectorCache] = {}
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
        with self._lock:
            current = self._schema_version(Tx(self._conn, self._PARAM))
        self._check_schema(current, len(MIGRATIONS))
        if current < len(MIGRATIONS):
            # Re-read inside the write lock: another process may have migrated meanwhile.
            with self._on(self._tx()) as c:
                self._upgrade(c, MIGRATIONS)

    def _schema_version(self, c: Tx) -> int:
        return int(c.one("PRAGMA user_version")[0])

    def _apply_migration(self, c: Tx, version: int, sql: str) -> None:
        for stmt in sql.split(";"):  # sqlite3 runs one statement per call
            if stmt.strip():
                c.run(stmt)
        c.run(f"PRAGMA user_version = {version}")

    @contextmanager
    def _begin(self, mode: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            c = self._conn
            c.execute(f"BEGIN {mode}")
            try:
                yield c
            except BaseException:
                if c.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                    c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        # IMMEDIATE: the write lock is taken up front, so writers queue (busy timeout)
        # instead of failing when a read transaction would have to be upgraded.
        return self._begin("IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        # One read transaction = one consistent WAL snapshot across several SELECTs.
        return self._begin("DEFERRED")

    def _lock_dim(self, c: Tx) -> None:
        """Nothing to do: a write transaction already holds the file's write lock."""

    def _changed(self, c: Tx, namespace: str, procedure_id: str) -> None:
        # The log the vector caches of every process patch themselves from.
        c.run("INSERT INTO changes(procedure_id) VALUES (?)", (procedure_id,))

    def _encode(self, v: np.ndarray) -> bytes:
        return v.tobytes()

    def _time(self, t: datetime) -> str:
        return t.isoformat()

    def _row_vectors(self, c: Tx, row: Any) -> dict[str, list[list[float]]]:
        out: dict[str, list[list[float]]] = {}
        for r in c.all(
            "SELECT kind, vec FROM vectors WHERE namespace = ? AND procedure_id = ? ORDER BY seq",
            (row["namespace"], row["id"]),
        ):
            out.setdefault(r["kind"], []).append(np.frombuffer(r["vec"], dtype=np.float32).tolist())
        return out

    # -- procedures -----------------------------------------------------------

    def bulk_add(self, procedures: Sequence[Procedure], task_vectors: np.ndarray) -> None:
        """Fast path for loading many procedures at once (one transaction): their task
        vectors come as one (n, dim) array instead of lists inside each record."""
        vecs = np.ascontiguousarray(task_vectors, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(procedures):
            raise InvalidInput(
                f"task_vectors must have shape ({len(procedures)}, dim), got {vecs.shape}"
            )
        vecs = unit_rows(vecs)
        with self._on(self._tx()) as c:
            if len(procedures):
                self._fit(c, vecs[0], "task vector")  # sets / checks the store's dimension
            self._insert_procedures(c, procedures)
            insert(
                c,
                "vectors",
                [self._vector_row(p, "task", 0, vecs[i]) for i, p in enumerate(procedures)],
            )

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
        with self._read() as conn:
            c = conn.cursor()
            c.row_factory = None  # plain tuples: this may load millions of rows
            vmax = c.execute("SELECT coalesce(max(seq), 0) FROM vectors").fetchone()[0]
            cmax = c.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
            if vmax == cache.last_vec and cmax == cache.last_change:
                return cache
            cols = "procedure_id, namespace, environment, active, vec"
            changed = {
                r[0]
                for r in c.execute(
                    "SELECT DISTINCT procedure_id FROM changes WHERE seq > ?", (cache.last_change,)
                ).fetchall()
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

    def _nearest(
        self, q: np.ndarray, kind: str, k: int, namespace: str | None, environment: str | None
    ) -> list[tuple[str, float]]:
        with self._lock:
            cache = self._refresh(kind)
            if cache is None:
                return []
            return cache.search(q, k, namespace, environment, distinct=(kind == "fact"))

    def change_token(self) -> tuple[int, int, int]:
        """Changes whenever anything searchable changed (lets callers cache derived indexes)."""
        with self._read() as c:
            return (
                c.execute("SELECT coalesce(max(seq), 0) FROM vectors").fetchone()[0],
                c.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0],
                c.execute("SELECT count(*) FROM procedures").fetchone()[0],
            )

    # -- maintenance ------------------------------------------------------------

    def integrity_check(self) -> str:
        with self._lock:
            return self._conn.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._caches.clear()
            self._conn.close()


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore", "Usage"]
