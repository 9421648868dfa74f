"""API keys of the memory service: each key reads and writes one namespace.

A key is shown once, at creation: ``memp_<id>_<secret>``. Only the id and the
SHA-256 of the secret are stored, so a leaked database does not leak usable keys.
Keys live next to the memory: in an ``api_keys`` table of the SQLite file (created
here, apart from the store's own migrations) or in the PostgreSQL schema.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from memp.errors import InvalidInput, NotFound

PREFIX = "memp"
_TOKEN = re.compile(rf"^{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{20,}})$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ApiKey(BaseModel):
    """A stored key, without its secret."""

    id: str
    namespace: str
    name: str = ""
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def check_namespace(namespace: str) -> str:
    if not _NAMESPACE.match(namespace):
        raise InvalidInput(
            f"invalid namespace {namespace!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return namespace


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_token() -> tuple[str, str, str]:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{PREFIX}_{key_id}_{secret}"


class KeyStore(Protocol):
    def create(self, namespace: str, *, name: str = "") -> tuple[ApiKey, str]:
        """Make a key for ``namespace``; returns the record and the token (shown once)."""
        ...

    def list(
        self, *, namespace: str | None = None, include_revoked: bool = True
    ) -> list[ApiKey]: ...
    def revoke(self, key_id: str) -> ApiKey: ...
    def verify(self, token: str) -> ApiKey | None:
        """The active key a token belongs to, or None."""
        ...

    def close(self) -> None: ...


class _SqlKeys:
    """Shared logic; subclasses supply ``_query`` / ``_execute`` for their driver."""

    _param = "?"

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self._param)

    @staticmethod
    def _record(row: dict[str, Any]) -> ApiKey:
        return ApiKey(
            id=row["id"],
            namespace=row["namespace"],
            name=row["name"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )

    def create(self, namespace: str, *, name: str = "") -> tuple[ApiKey, str]:
        check_namespace(namespace)
        key_id, secret, token = _new_token()
        created = datetime.now(UTC)
        self._execute(
            self._sql(
                "INSERT INTO api_keys (id, namespace, name, secret_sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?)"
            ),
            (key_id, namespace, name, _hash(secret), created),
        )
        return ApiKey(id=key_id, namespace=namespace, name=name, created_at=created), token

    def list(self, *, namespace: str | None = None, include_revoked: bool = True) -> list[ApiKey]:
        where, args = ["1=1"], []
        if namespace is not None:
            where.append("namespace = ?")
            args.append(namespace)
        if not include_revoked:
            where.append("revoked_at IS NULL")
        rows = self._query(
            self._sql(
                "SELECT id, namespace, name, created_at, revoked_at FROM api_keys "
                f"WHERE {' AND '.join(where)} ORDER BY created_at, id"
            ),
            tuple(args),
        )
        return [self._record(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        self._execute(
            self._sql("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
            (datetime.now(UTC), key_id),
        )
        rows = self._query(
            self._sql(
                "SELECT id, namespace, name, created_at, revoked_at FROM api_keys WHERE id = ?"
            ),
            (key_id,),
        )
        if not rows:
            raise NotFound(f"no API key {key_id!r}; see `memp keys list`")
        return self._record(rows[0])

    def verify(self, token: str) -> ApiKey | None:
        m = _TOKEN.match(token.strip())
        if m is None:
            return None
        key_id, secret = m.groups()
        rows = self._query(
            self._sql(
                "SELECT id, namespace, name, created_at, revoked_at, secret_sha256 FROM api_keys "
                "WHERE id = ?"
            ),
            (key_id,),
        )
        if not rows or rows[0]["revoked_at"] is not None:
            return None
        # Constant-time comparison: response timing must not reveal the stored hash.
        if not hmac.compare_digest(rows[0]["secret_sha256"], _hash(secret)):
            return None
        return self._record(rows[0])


class SQLiteKeyStore(_SqlKeys):
    """Keys in an ``api_keys`` table of the memory's SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path,
            check_same_thread=False,
            isolation_level=None,
            timeout=30,
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, namespace TEXT NOT NULL, "
            "name TEXT NOT NULL DEFAULT '', secret_sha256 TEXT NOT NULL, created_at TEXT NOT NULL, "
            "revoked_at TEXT)"
        )

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, _sqlite_args(args)).fetchall()]

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, _sqlite_args(args)).rowcount

    def close(self) -> None:
        self._conn.close()


def _sqlite_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.isoformat() if isinstance(a, datetime) else a for a in args)


class PostgresKeyStore(_SqlKeys):
    """Keys in the ``api_keys`` table of a PostgreSQL memory (created by its migrations)."""

    _param = "%s"

    def __init__(self, store: Any) -> None:
        self._store = store  # a memp.store.postgres.PostgresStore

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._store._read() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._store._tx() as cur:
            cur.execute(sql, args)
            return cur.rowcount

    def close(self) -> None:
        """The store owns the connections."""


def is_postgres_url(url_or_path: str | Path) -> bool:
    return str(url_or_path).startswith(("postgresql://", "postgres://"))


def keys_for(store: Any, url_or_path: str | Path) -> KeyStore:
    """The key store that lives beside ``store`` (opened from ``url_or_path``)."""
    if is_postgres_url(url_or_path):
        return PostgresKeyStore(store)
    return SQLiteKeyStore(url_or_path)


def open_keys(url_or_path: str | Path) -> tuple[KeyStore, Any]:
    """Open the key store of a memory database; returns (keys, store to close or None)."""
    if is_postgres_url(url_or_path):
        from memp.store.postgres import PostgresStore

        store = PostgresStore(str(url_or_path), pool_size=2)
        return PostgresKeyStore(store), store
    return SQLiteKeyStore(url_or_path), None
