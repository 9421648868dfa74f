"""PostgreSQL + pgvector store: one memory shared by many agents and processes.

Same contract as the SQLite store (:class:`memp.store.base.MemoryStore`): numbered
migrations, one transaction per write, atomic usage increments, versions kept in a
history table. Vectors live in one table with an HNSW index per kind (inner
product), so search is approximate (ef_search 100; recall@10 0.9 on random 64-d
vectors, higher on real embeddings). A filtered HNSW scan that comes back short of
k is redone as an exact scan; best-fact search (``kind="fact"``) is always exact.
Records are keyed by (namespace, id): ids are unique within a namespace only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from memp.errors import (
    DimensionMismatch,
    InvalidInput,
    MissingDependency,
    StoreError,
)
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
from memp.types import Procedure, ProcedureStatus, Trajectory

try:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependency("psycopg", "postgres", "needed for postgresql:// stores") from exc

# Numbered migrations. Never edit one that has shipped: append a new one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE memp_meta (key text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE procedures (
            seq bigserial UNIQUE,
            id text PRIMARY KEY,
            namespace text NOT NULL,
            environment text NOT NULL,
            status text NOT NULL,
            version integer NOT NULL,
            data jsonb NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            retrieved bigint NOT NULL DEFAULT 0,
            succeeded bigint NOT NULL DEFAULT 0,
            failed bigint NOT NULL DEFAULT 0,
            last_used_at timestamptz,
            changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE INDEX procedures_scope ON procedures (namespace, environment, status, seq);
        -- No foreign key: an import may bring versions before their procedure.
        CREATE TABLE procedure_versions (
            procedure_id text NOT NULL,
            version integer NOT NULL,
            snapshot jsonb NOT NULL,
            reason text NOT NULL DEFAULT '',
            replaced_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (procedure_id, version)
        );
        -- The filter columns are copied here so an HNSW scan needs no join.
        CREATE TABLE vectors (
            procedure_id text NOT NULL REFERENCES procedures (id) ON DELETE CASCADE,
            kind text NOT NULL,
            idx integer NOT NULL,
            namespace text NOT NULL,
            environment text NOT NULL,
            active boolean NOT NULL,
            embedding vector NOT NULL,
            PRIMARY KEY (procedure_id, kind, idx)
        );
        CREATE TABLE trajectories (
            seq bigserial UNIQUE,
            id text PRIMARY KEY,
            namespace text NOT NULL,
            environment text NOT NULL,
            data jsonb NOT NULL,
            created_at timestamptz NOT NULL
        );
        CREATE INDEX trajectories_scope ON trajectories (namespace, environment, seq);
        CREATE TABLE api_keys (
            id text PRIMARY KEY,
            namespace text NOT NULL,
            name text NOT NULL DEFAULT '',
            secret_sha256 text NOT NULL,
            created_at timestamptz NOT NULL,
            revoked_at timestamptz
        );
        """,
    ),
    (
        2,
        # Records keyed by (namespace, id), so one namespace can neither reach nor detect
        # another's ids; a version takes the namespace its snapshot was written in.
        """
        ALTER TABLE vectors DROP CONSTRAINT vectors_procedure_id_fkey;
        ALTER TABLE vectors DROP CONSTRAINT vectors_pkey;
        ALTER TABLE procedures DROP CONSTRAINT procedures_pkey;
        ALTER TABLE procedures ADD PRIMARY KEY (namespace, id);
        ALTER TABLE vectors ADD PRIMARY KEY (namespace, procedure_id, kind, idx);
        ALTER TABLE vectors ADD FOREIGN KEY (namespace, procedure_id)
            REFERENCES procedures (namespace, id) ON DELETE CASCADE;
        ALTER TABLE procedure_versions ADD COLUMN namespace text;
        UPDATE procedure_versions SET namespace = coalesce(snapshot->>'namespace', 'default');
        ALTER TABLE procedure_versions ALTER COLUMN namespace SET NOT NULL;
        ALTER TABLE procedure_versions DROP CONSTRAINT procedure_versions_pkey;
        ALTER TABLE procedure_versions ADD PRIMARY KEY (namespace, procedure_id, version);
        ALTER TABLE trajectories DROP CONSTRAINT trajectories_pkey;
        ALTER TABLE trajectories ADD PRIMARY KEY (namespace, id);
        """,
    ),
]


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)
    # Wider HNSW beam than pgvector's default 40: better recall for filtered scans.
    conn.execute("SET hnsw.ef_search = 100")


def _no_flush(conn: psycopg.Connection) -> None:
    conn.execute("SET synchronous_commit = off")


def _as_list(v: Any) -> list[float]:
    # pgvector's loader gives a Vector (newer) or a numpy array (older).
    arr = v.to_numpy() if hasattr(v, "to_numpy") else np.asarray(v)
    return [float(x) for x in arr]


class PostgresStore:
    """A :class:`~memp.store.base.MemoryStore` on PostgreSQL with pgvector.

    ``url`` is a libpq URL (``postgresql://user@host:port/db``). Many processes may
    open the same database; each write is one transaction.
    """

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        self.url = url
        self._where = _redact(url)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                self._migrate(conn)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {_redact(url)}: {exc}") from exc
        # Autocommit connections: a single-statement read is one round trip; writes
        # and multi-statement reads open an explicit transaction (see _tx).
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            configure=_configure,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=True,
            name="memp",
        )
        # Usage counters are bumped on every retrieval: their commits skip the flush to
        # disk (a PostgreSQL crash may drop the last fraction of a second of increments,
        # never corrupt them; the trade-off SQLite's synchronous=NORMAL makes).
        self._counters = ConnectionPool(
            url,
            min_size=1,
            max_size=max(2, pool_size // 2),
            configure=_no_flush,
            kwargs={"autocommit": True},
            open=True,
            name="memp-counters",
        )
        self._dim: int | None = None
        with self._tx() as cur:
            cur.execute("SELECT value FROM memp_meta WHERE key = 'dim'")
            row = cur.fetchone()
            self._dim = int(row["value"]) if row else None

    # ------------------------------------------------------------------ plumbing
    @staticmethod
    def _migrate(conn: psycopg.Connection) -> None:
        with conn.transaction():
            # One migrator at a time, even when many servers start together.
            conn.execute("SELECT pg_advisory_xact_lock(7426615)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS memp_migrations "
                "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT coalesce(max(version), 0) FROM memp_migrations").fetchone()
            current = int(row[0]) if row else 0
            latest = MIGRATIONS[-1][0]
            if current > latest:
                raise StoreError(
                    f"the database schema is version {current} but this memp knows only up to "
                    f"{latest}; upgrade memp"
                )
            for version, sql in MIGRATIONS:
                if version > current:
                    conn.execute(sql)
                    conn.execute("INSERT INTO memp_migrations (version) VALUES (%s)", (version,))

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """One transaction (writes, and reads of several statements)."""
        with self.pool.connection() as conn, conn.transaction(), conn.cursor(binary=True) as cur:
            yield cur

    @contextmanager
    def _read(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """One statement, no explicit transaction (a single round trip)."""
        with self.pool.connection() as conn, conn.cursor(binary=True) as cur:
            yield cur

    @property
    def dim(self) -> int | None:
        return self._dim

    @property
    def embedder_identity(self) -> dict[str, Any] | None:
        with self._read() as cur:
            cur.execute("SELECT value FROM memp_meta WHERE key = 'embedder'")
            row = cur.fetchone()
        return json.loads(row["value"]) if row else None

    def check_embedder(self, name: str, dim: int) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO memp_meta (key, value) VALUES ('embedder', %s) "
                "ON CONFLICT (key) DO NOTHING",
                (identity(name, dim),),
            )
            cur.execute("SELECT value FROM memp_meta WHERE key = 'embedder'")
            row = cur.fetchone()
            check_identity(json.loads(row["value"]), name, dim, self._where)

    def _check_dim(self, cur: psycopg.Cursor[Any], vectors: list[np.ndarray]) -> None:
        """Fix the dimension on the first vector (and build the HNSW indexes then)."""
        if not vectors:
            return
        sizes = {int(v.shape[0]) for v in vectors}
        if len(sizes) > 1:
            raise DimensionMismatch(f"vectors of different sizes in one write: {sorted(sizes)}")
        size = sizes.pop()
        if self._dim is None:
            cur.execute("SELECT pg_advisory_xact_lock(7426616)")
            cur.execute("SELECT value FROM memp_meta WHERE key = 'dim'")
            row = cur.fetchone()
            if row is None:
                cur.execute("INSERT INTO memp_meta (key, value) VALUES ('dim', %s)", (str(size),))
                cur.execute(f"ALTER TABLE vectors ALTER COLUMN embedding TYPE vector({size})")
                for kind in ("task", "key"):
                    cur.execute(
                        f"CREATE INDEX vectors_hnsw_{kind} ON vectors "
                        f"USING hnsw (embedding vector_ip_ops) WHERE kind = '{kind}'"
                    )
                self._dim = size
            else:
                self._dim = int(row["value"])
        if size != self._dim:
            raise DimensionMismatch(
                f"vector of size {size} does not fit this store (dimension {self._dim}); "
                "use the embedder the store was built with, or a new store"
            )

    # ---------------------------------------------------------------- procedures
    def _write_vectors(
        self,
        cur: psycopg.Cursor[Any],
        p: Procedure,
        kinds: Sequence[str] = KINDS,
        fresh: bool = False,
    ) -> None:
        vecs = [(kind, unit(v)) for kind, v in vectors_of(p, kinds)]
        if any(v.size == 0 for _, v in vecs):
            raise InvalidInput(f"procedure {p.id} has an empty vector")
        self._check_dim(cur, [v for _, v in vecs])
        if kinds and not fresh:
            cur.execute(
                "DELETE FROM vectors WHERE namespace = %s AND procedure_id = %s AND kind = ANY(%s)",
                (p.namespace, p.id, list(kinds)),
            )
        if vecs:
            active = p.status == ProcedureStatus.ACTIVE
            idx: dict[str, int] = {}
            rows = []
            for kind, v in vecs:
                i = idx[kind] = idx.get(kind, -1) + 1
                rows.append((p.id, kind, i, p.namespace, p.environment, active, v))
            cur.executemany(
                "INSERT INTO vectors (procedure_id, kind, idx, namespace, environment, active, "
                "embedding) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )

    def _insert(self, cur: psycopg.Cursor[Any], p: Procedure) -> None:
        u = p.usage
        cur.execute(
            "INSERT INTO procedures (id, namespace, environment, status, version, data, "
            "created_at, updated_at, retrieved, succeeded, failed, last_used_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                p.id,
                p.namespace,
                p.environment,
                p.status.value,
                p.version,
                body(p),
                p.created_at,
                p.updated_at,
                u.retrieved,
                u.succeeded,
                u.failed,
                u.last_used_at,
            ),
        )
        self._write_vectors(cur, p, fresh=True)

    def add(self, procedures: Sequence[Procedure]) -> None:
        if isinstance(procedures, Procedure):
            procedures = [procedures]
        if not procedures:
            return
        with self._tx() as cur:
            try:
                for p in procedures:
                    self._insert(cur, p)
            except psycopg.errors.UniqueViolation as exc:
                raise duplicate_procedure(exc.diag.message_detail) from exc

    def _load(
        self, cur: psycopg.Cursor[Any], rows: list[dict[str, Any]], vectors: bool = True
    ) -> list[Procedure]:
        if not rows:
            return []
        # by (namespace, id): the same id may name procedures of several namespaces
        vecs: dict[tuple[str, str], dict[str, list[list[float]]]] = {}
        if vectors and "vkinds" in rows[0]:  # fetched with the row (_FULL)
            for r in rows:
                pv = vecs.setdefault((r["namespace"], r["id"]), {})
                for kind, v in zip(r["vkinds"] or [], r["vecs"] or [], strict=True):
                    pv.setdefault(kind, []).append([float(x) for x in v])
        elif vectors:
            cur.execute(
                "SELECT namespace, procedure_id, kind, embedding FROM vectors "
                "WHERE procedure_id = ANY(%s) ORDER BY procedure_id, kind, idx",
                ([r["id"] for r in rows],),
            )
            for v in cur.fetchall():
                key = (v["namespace"], v["procedure_id"])
                vecs.setdefault(key, {}).setdefault(v["kind"], []).append(_as_list(v["embedding"]))
        return [
            from_columns(
                r["data"],
                status=r["status"],
                retrieved=r["retrieved"],
                succeeded=r["succeeded"],
                failed=r["failed"],
                last_used_at=r["last_used_at"],
                vectors=vecs.get((r["namespace"], r["id"])),
            )
            for r in rows
        ]

    @staticmethod
    def _scope(
        namespace: str | None,
        environment: str | None = None,
        status: ProcedureStatus | None = None,
        alias: str = "",
    ) -> tuple[str, list[Any]]:
        filters = scope_filters(namespace, environment, status)
        where = " AND ".join(f"{alias}{col} = %s" for col, _ in filters)
        return where or "TRUE", [val for _, val in filters]

    def _get(
        self, cur: psycopg.Cursor[Any], procedure_id: str, namespace: str | None, lock: bool = False
    ) -> dict[str, Any]:
        scope, args = self._scope(namespace)
        cur.execute(
            f"SELECT * FROM procedures WHERE id = %s AND {scope} LIMIT 2"
            + (" FOR UPDATE" if lock else ""),
            [procedure_id, *args],
        )
        return the_one(cur.fetchall(), "procedure", procedure_id, namespace, self._where)

    # A procedure with its vectors in one statement (one round trip, one snapshot).
    _FULL = (
        "SELECT p.*, v.vkinds, v.vecs FROM procedures p LEFT JOIN LATERAL ("
        "SELECT array_agg(kind ORDER BY kind, idx) AS vkinds, "
        "array_agg(embedding::real[] ORDER BY kind, idx) AS vecs "
        "FROM vectors WHERE procedure_id = p.id AND namespace = p.namespace) v ON TRUE"
    )

    def get(self, procedure_id: str, *, namespace: str | None = None) -> Procedure:
        scope, args = self._scope(namespace, alias="p.")
        with self._read() as cur:
            cur.execute(f"{self._FULL} WHERE p.id = %s AND {scope} LIMIT 2", [procedure_id, *args])
            row = the_one(cur.fetchall(), "procedure", procedure_id, namespace, self._where)
            return self._load(cur, [row])[0]

    def update(self, procedure: Procedure, *, reason: str = "") -> Procedure:
        """Store ``procedure`` as the next version; usage, status and namespace stay as
        stored, and vector kinds the new record leaves empty keep their stored vectors."""
        with self._tx() as cur:
            # FOR UPDATE: two concurrent updates of one procedure get distinct versions.
            row = self._get(cur, procedure.id, procedure.namespace, lock=True)
            ns = row["namespace"]
            old = self._load(cur, [row], vectors=False)[0]
            cur.execute(
                "INSERT INTO procedure_versions (namespace, procedure_id, version, snapshot, "
                "reason) VALUES (%s, %s, %s, %s, %s)",
                (ns, old.id, old.version, snapshot(old), reason),
            )
            new = next_version(old, procedure, reason)
            cur.execute(
                "UPDATE procedures SET environment = %s, version = %s, data = %s, updated_at = %s, "
                "changed_at = clock_timestamp() WHERE namespace = %s AND id = %s",
                (new.environment, new.version, body(new), new.updated_at, ns, new.id),
            )
            self._write_vectors(cur, new, given_kinds(new))
            cur.execute(
                "UPDATE vectors SET environment = %s WHERE namespace = %s AND procedure_id = %s",
                (new.environment, ns, new.id),
            )
            return self._load(cur, [self._get(cur, new.id, ns)])[0]

    def history(self, procedure_id: str, *, namespace: str | None = None) -> list[Procedure]:
        """Every version of a procedure, oldest first, the current one last."""
        with self._tx() as cur:
            row = self._get(cur, procedure_id, namespace)
            current = self._load(cur, [row], vectors=False)[0]
            cur.execute(
                "SELECT snapshot FROM procedure_versions WHERE namespace = %s AND procedure_id = %s "
                "ORDER BY version",
                (row["namespace"], procedure_id),
            )
            older = [Procedure.model_validate(r["snapshot"]) for r in cur.fetchall()]
        return [*older, current]

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
        scope, args = self._scope(namespace, environment, status, alias="p.")
        select = self._FULL if vectors else "SELECT p.* FROM procedures p"
        sql = f"{select} WHERE {scope} ORDER BY p.seq LIMIT %s OFFSET %s"
        with self._read() as cur:
            cur.execute(sql, [*args, limit, int(offset)])
            return self._load(cur, cur.fetchall(), vectors=vectors)

    def count(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
    ) -> int:
        scope, args = self._scope(namespace, environment, status)
        with self._read() as cur:
            cur.execute(f"SELECT count(*) AS n FROM procedures WHERE {scope}", args)
            row = cur.fetchone()
            return int(row["n"]) if row else 0

    def set_status(
        self, procedure_id: str, status: ProcedureStatus, *, namespace: str | None = None
    ) -> Procedure:
        status = ProcedureStatus(status)
        with self._tx() as cur:
            ns = self._get(cur, procedure_id, namespace, lock=True)["namespace"]
            cur.execute(
                "UPDATE procedures SET status = %s, changed_at = clock_timestamp() "
                "WHERE namespace = %s AND id = %s",
                (status.value, ns, procedure_id),
            )
            cur.execute(
                "UPDATE vectors SET active = %s WHERE namespace = %s AND procedure_id = %s",
                (status == ProcedureStatus.ACTIVE, ns, procedure_id),
            )
            return self._load(cur, [self._get(cur, procedure_id, ns)])[0]

    def record_usage(
        self,
        procedure_id: str,
        *,
        retrieved: int = 0,
        succeeded: int = 0,
        failed: int = 0,
        namespace: str | None = None,
    ) -> None:
        ns = namespace
        if ns is None:  # the one namespace holding the id (an id held by two is refused)
            with self._read() as cur:
                ns = self._get(cur, procedure_id, None)["namespace"]
        # One UPDATE adding to the counters: concurrent reporters cannot lose increments.
        with self._counters.connection() as conn:
            cur = conn.execute(
                "UPDATE procedures SET retrieved = retrieved + %s, succeeded = succeeded + %s, "
                "failed = failed + %s, last_used_at = now() WHERE namespace = %s AND id = %s",
                [int(retrieved), int(succeeded), int(failed), ns, procedure_id],
            )
            if cur.rowcount == 0:
                raise procedure_not_found(procedure_id, namespace, self._where)

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
        if k <= 0 or self._dim is None:
            return []
        if q.shape[0] != self._dim:
            raise DimensionMismatch(
                f"query vector of size {q.shape[0]} does not fit this store (dimension {self._dim})"
            )
        scope, args = self._scope(namespace, environment)
        if kind == "fact":
            # A procedure scores as its best-matching fact: exact, grouped.
            with self._read() as cur:
                cur.execute(
                    "SELECT procedure_id, max(-(embedding <#> %s)) AS score FROM vectors "
                    f"WHERE kind = 'fact' AND active AND {scope} GROUP BY procedure_id "
                    "ORDER BY score DESC, procedure_id LIMIT %s",
                    [q, *args, k],
                )
                return [(r["procedure_id"], float(r["score"])) for r in cur.fetchall()]
        sql = (
            "SELECT procedure_id, -(embedding <#> %s) AS score FROM vectors "
            f"WHERE kind = %s AND active AND {scope} ORDER BY embedding <#> %s LIMIT %s"
        )
        params = [q, kind, *args, q, k]
        if 4 * k <= 100:  # the session's ef_search is wide enough: one round trip
            with self._read() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall()
        else:
            with self._tx() as cur:
                cur.execute(f"SET LOCAL hnsw.ef_search = {min(1000, 4 * k)}")
                cur.execute(sql, params)
                rows = cur.fetchall()
        if len(rows) < k:
            # HNSW filters after the graph walk, so a narrow scope can come back short:
            # answer exactly instead (a sequential scan over the scope).
            with self._tx() as cur:
                cur.execute("SET LOCAL enable_indexscan = off")
                cur.execute(sql, params)
                rows = cur.fetchall()
        hits = [(r["procedure_id"], float(r["score"])) for r in rows]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits

    # -------------------------------------------------------------- trajectories
    def add_trajectory(self, trajectory: Trajectory, *, namespace: str = "default") -> None:
        """Store (or replace, by id within ``namespace``) a trajectory."""
        with self._tx() as cur:
            self._put_trajectory(cur, trajectory, namespace)

    @staticmethod
    def _put_trajectory(cur: psycopg.Cursor[Any], t: Trajectory, namespace: str) -> None:
        cur.execute(
            "INSERT INTO trajectories (id, namespace, environment, data, created_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (namespace, id) DO UPDATE SET "
            "environment = EXCLUDED.environment, data = EXCLUDED.data",
            (t.id, namespace, t.environment, t.model_dump_json(), t.created_at),
        )

    def get_trajectory(self, trajectory_id: str, *, namespace: str | None = None) -> Trajectory:
        scope, args = self._scope(namespace)
        with self._read() as cur:
            cur.execute(
                f"SELECT data FROM trajectories WHERE id = %s AND {scope} LIMIT 2",
                [trajectory_id, *args],
            )
            rows = cur.fetchall()
        row = the_one(rows, "trajectory", trajectory_id, namespace, self._where)
        return Trajectory.model_validate(row["data"])

    def list_trajectories(
        self,
        *,
        namespace: str | None = None,
        environment: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trajectory]:
        scope, args = self._scope(namespace, environment)
        sql = f"SELECT data FROM trajectories WHERE {scope} ORDER BY seq LIMIT %s OFFSET %s"
        with self._read() as cur:
            cur.execute(sql, [*args, limit, int(offset)])
            return [Trajectory.model_validate(r["data"]) for r in cur.fetchall()]

    # ----------------------------------------------------- export / import (exact)
    def export_records(self, *, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Every stored record as plain dicts: procedures (with vectors), their earlier
        versions and trajectories. :meth:`import_records` restores them exactly."""
        scope, args = self._scope(namespace)
        # One REPEATABLE READ transaction: a consistent snapshot while writers go on.
        with self.pool.connection() as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(f"SELECT * FROM procedures WHERE {scope} ORDER BY seq", args)
                    rows = cur.fetchall()
                    for i in range(0, len(rows), 200):
                        chunk = rows[i : i + 200]
                        cur.execute(
                            "SELECT namespace, procedure_id, snapshot FROM procedure_versions "
                            "WHERE procedure_id = ANY(%s) ORDER BY procedure_id, version",
                            ([r["id"] for r in chunk],),
                        )
                        versions: dict[tuple[str, str], list[Any]] = {}
                        for v in cur.fetchall():
                            key = (v["namespace"], v["procedure_id"])
                            versions.setdefault(key, []).append(v["snapshot"])
                        for p in self._load(cur, chunk):
                            for snap in versions.get((p.namespace, p.id), []):
                                yield version_record(snap)
                            yield procedure_record(p)
                    cur.execute(
                        f"SELECT namespace, data FROM trajectories WHERE {scope} ORDER BY seq", args
                    )
                    for r in cur.fetchall():
                        yield trajectory_record(r["namespace"], r["data"])
            finally:
                conn.isolation_level = None

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
        with self._tx() as cur:

            def has(ns: str, pid: str) -> bool:
                cur.execute("SELECT 1 FROM procedures WHERE namespace = %s AND id = %s", (ns, pid))
                return cur.fetchone() is not None

            def drop(ns: str, pid: str) -> None:  # its vectors go by the foreign key
                cur.execute("DELETE FROM procedures WHERE namespace = %s AND id = %s", (ns, pid))

            def put_version(p: Procedure, replace: bool) -> bool:
                cur.execute(
                    "INSERT INTO procedure_versions (namespace, procedure_id, version, snapshot) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (namespace, procedure_id, version) "
                    + ("DO UPDATE SET snapshot = EXCLUDED.snapshot" if replace else "DO NOTHING"),
                    (p.namespace, p.id, p.version, snapshot(p)),
                )
                return cur.rowcount > 0

            return run_import(
                records,
                replace=replace,
                namespace=namespace,
                where=self._where,
                has=has,
                drop=drop,
                insert=lambda p: self._insert(cur, p),
                put_version=put_version,
                put_trajectory=lambda t, ns: self._put_trajectory(cur, t, ns),
            )

    def change_token(self) -> tuple[Any, ...]:
        """Changes whenever anything searchable changed (lets callers cache derived indexes)."""
        with self._tx() as cur:
            cur.execute(
                "SELECT coalesce(max(seq), 0) AS s, count(*) AS n, max(changed_at) AS c "
                "FROM procedures"
            )
            row = cur.fetchone() or {}
            return (row.get("s"), row.get("n"), str(row.get("c")))

    def stats(self) -> dict[str, Any]:
        with self._tx() as cur:
            cur.execute("SELECT status, count(*) AS n FROM procedures GROUP BY status")
            by_status = {r["status"]: r["n"] for r in cur.fetchall()}
            counts = {}
            for table in ("procedure_versions", "vectors", "trajectories"):
                cur.execute(f"SELECT count(*) AS n FROM {table}")
                counts[table] = cur.fetchone()["n"]  # type: ignore[index]
            cur.execute("SELECT DISTINCT namespace FROM procedures ORDER BY 1")
            namespaces = [r["namespace"] for r in cur.fetchall()]
            cur.execute("SELECT max(version) AS v FROM memp_migrations")
            schema = cur.fetchone()["v"]  # type: ignore[index]
        return {
            "url": self._where,
            "schema_version": schema,
            "dim": self.dim,
            "embedder": self.embedder_identity,
            "procedures": by_status,
            "versions": counts["procedure_versions"],
            "vectors": counts["vectors"],
            "trajectories": counts["trajectories"],
            "namespaces": namespaces,
        }

    def close(self) -> None:
        self._counters.close()
        self.pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url
