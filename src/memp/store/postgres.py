"""PostgreSQL + pgvector store: one memory shared by many agents and processes.

Same contract as the SQLite store (:class:`memp.store.base.MemoryStore`): numbered
migrations, one transaction per write, atomic usage increments, versions kept in a
history table. Vectors live in one table with an HNSW index per kind (inner
product), so search is approximate (ef_search 100; recall@10 0.9 on random 64-d
vectors, higher on real embeddings). A filtered HNSW scan that comes back short of
k is redone as an exact scan; best-fact search (``kind="fact"``) is always exact.
Records are keyed by (namespace, id): ids are unique within a namespace only.

The record logic lives in :mod:`memp.store.sql` (shared with SQLite); this module is
the PostgreSQL side of it: pooled connections, the schema and pgvector search.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from memp.errors import MissingDependency, StoreError
from memp.store.records import scope_filters
from memp.store.sql import SqlStore, Tx, clause
from memp.types import Procedure

try:
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependency("psycopg", "postgres", "needed for postgresql:// stores") from exc

# Numbered migrations (entry i makes schema version i + 1). Never edit one that has
# shipped: append a new one.
MIGRATIONS: list[str] = [
    # 1: initial schema
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
    # 2: records keyed by (namespace, id), so one namespace can neither reach nor detect
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
]


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)
    # Wider HNSW beam than pgvector's default 40: better recall for filtered scans.
    conn.execute("SET hnsw.ef_search = 100")


def _no_flush(conn: psycopg.Connection) -> None:
    conn.execute("SET synchronous_commit = off")


class PostgresStore(SqlStore):
    """A :class:`~memp.store.base.MemoryStore` on PostgreSQL with pgvector.

    ``url`` is a libpq URL (``postgresql://user@host:port/db``). Many processes may
    open the same database; each write is one transaction.
    """

    _PARAM = "%s"
    _META = "memp_meta"
    _BODY = "data"
    _VERSION_ID = "procedure_id"
    _VECTOR = "embedding"
    _ORDER = "seq"
    _NO_LIMIT = None
    # OF p: the vectors a row may come with are not locked (nor lockable, outer join).
    _LOCK = " FOR UPDATE OF p"
    _STAMPS: ClassVar[dict[str, tuple[str, ...]]] = {
        "procedures": ("created_at", "updated_at"),
        "trajectories": ("created_at",),
    }
    # A procedure with its vectors in one statement (one round trip, one snapshot).
    _JOIN = (
        ", v.vkinds, v.vecs",
        " LEFT JOIN LATERAL (SELECT array_agg(kind ORDER BY kind, idx) AS vkinds, "
        "array_agg(embedding::real[] ORDER BY kind, idx) AS vecs "
        "FROM vectors WHERE procedure_id = p.id AND namespace = p.namespace) v ON TRUE",
    )
    _UNIQUE = psycopg.errors.UniqueViolation
    _WHERE_KEY = "url"

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        self.url = url
        self._where = _redact(url)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                self._migrate(conn)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self._where}: {exc}") from exc
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
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=True,
            name="memp-counters",
        )

    # ------------------------------------------------------------------ plumbing
    def _migrate(self, conn: psycopg.Connection) -> None:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            c = Tx(cur, self._PARAM)
            # One migrator at a time, even when many servers start together.
            c.run("SELECT pg_advisory_xact_lock(7426615)")
            c.run(
                "CREATE TABLE IF NOT EXISTS memp_migrations "
                "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            self._upgrade(c, MIGRATIONS)

    def _schema_version(self, c: Tx) -> int:
        return int(c.one("SELECT coalesce(max(version), 0) AS v FROM memp_migrations")["v"])

    def _apply_migration(self, c: Tx, version: int, sql: str) -> None:
        c.run(sql)
        c.run("INSERT INTO memp_migrations (version) VALUES (?)", (version,))

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """One transaction (writes, and reads of several statements)."""
        with self.pool.connection() as conn, conn.transaction(), conn.cursor(binary=True) as cur:
            yield cur

    @contextmanager
    def _read(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """No explicit transaction: a single statement is a single round trip."""
        with self.pool.connection() as conn, conn.cursor(binary=True) as cur:
            yield cur

    @contextmanager
    def _snapshot(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        # One REPEATABLE READ transaction: a consistent snapshot while writers go on.
        with self.pool.connection() as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                with conn.transaction(), conn.cursor(binary=True) as cur:
                    yield cur
            finally:
                conn.isolation_level = None

    @contextmanager
    def _counting(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        with self._counters.connection() as conn, conn.cursor() as cur:
            yield cur

    def _lock_dim(self, c: Tx) -> None:
        c.run("SELECT pg_advisory_xact_lock(7426616)")

    def _set_dim(self, c: Tx, dim: int) -> None:
        # The first vector types the column and builds the HNSW indexes (per kind
        # searched through them; facts are scanned exactly).
        super()._set_dim(c, dim)
        c.run(f"ALTER TABLE vectors ALTER COLUMN embedding TYPE vector({dim})")
        for kind in ("task", "key"):
            c.run(
                f"CREATE INDEX vectors_hnsw_{kind} ON vectors "
                f"USING hnsw (embedding vector_ip_ops) WHERE kind = '{kind}'"
            )

    def _changed(self, c: Tx, namespace: str, procedure_id: str) -> None:
        # change_token() reads the latest stamp.
        c.run(
            "UPDATE procedures SET changed_at = clock_timestamp() WHERE namespace = ? AND id = ?",
            (namespace, procedure_id),
        )

    @staticmethod
    def _duplicate_detail(e: Exception) -> object:
        return e.diag.message_detail  # type: ignore[attr-defined]

    def _version_row(self, namespace: str, p: Procedure, reason: str) -> dict[str, Any]:
        return {**super()._version_row(namespace, p, reason), "reason": reason}

    def _vector_row(self, p: Procedure, kind: str, i: int, v: np.ndarray) -> dict[str, Any]:
        return {**super()._vector_row(p, kind, i, v), "idx": i}

    def _row_vectors(self, c: Tx, row: Any) -> dict[str, list[list[float]]]:
        out: dict[str, list[list[float]]] = {}
        for kind, v in zip(row["vkinds"] or [], row["vecs"] or [], strict=True):
            out.setdefault(kind, []).append([float(x) for x in v])
        return out

    # -------------------------------------------------------------- vector search
    def _nearest(
        self, q: np.ndarray, kind: str, k: int, namespace: str | None, environment: str | None
    ) -> list[tuple[str, float]]:
        scope = scope_filters(namespace, environment)
        if kind == "fact":
            # A procedure scores as its best-matching fact: exact, grouped.
            where, args = clause("", scope, "kind = 'fact'", "active")
            with self._on(self._read()) as c:
                rows = c.all(
                    f"SELECT procedure_id, max(-(embedding <#> ?)) AS score FROM vectors{where} "
                    "GROUP BY procedure_id ORDER BY score DESC, procedure_id LIMIT ?",
                    [q, *args, k],
                )
            return [(r["procedure_id"], float(r["score"])) for r in rows]
        where, args = clause("", [("kind", kind), *scope], "active")
        sql = (
            f"SELECT procedure_id, -(embedding <#> ?) AS score FROM vectors{where} "
            "ORDER BY embedding <#> ? LIMIT ?"
        )
        params = [q, *args, q, k]
        if 4 * k <= 100:  # the session's ef_search is wide enough: one round trip
            with self._on(self._read()) as c:
                rows = c.all(sql, params)
        else:
            with self._on(self._tx()) as c:
                c.run(f"SET LOCAL hnsw.ef_search = {min(1000, 4 * k)}")
                rows = c.all(sql, params)
        if len(rows) < k:
            # HNSW filters after the graph walk, so a narrow scope can come back short:
            # answer exactly instead (a sequential scan over the scope).
            with self._on(self._tx()) as c:
                c.run("SET LOCAL enable_indexscan = off")
                rows = c.all(sql, params)
        hits = [(r["procedure_id"], float(r["score"])) for r in rows]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits

    def change_token(self) -> tuple[Any, ...]:
        """Changes whenever anything searchable changed (lets callers cache derived indexes)."""
        with self._on(self._read()) as c:
            row = c.one(
                "SELECT coalesce(max(seq), 0) AS s, count(*) AS n, max(changed_at) AS c "
                "FROM procedures"
            )
        return (row["s"], row["n"], str(row["c"]))

    def close(self) -> None:
        self._counters.close()
        self.pool.close()


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url
