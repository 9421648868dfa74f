"""Storage backends behind the :class:`MemoryStore` protocol."""

from __future__ import annotations

from pathlib import Path

from memp.store.base import MemoryStore, VectorKind


def open_store(url_or_path: str | Path | MemoryStore = "memp.db") -> MemoryStore:
    """Open a store: a file path (or ``sqlite:///path``) gives SQLite, a
    ``postgresql://`` URL gives PostgreSQL + pgvector; a store object is returned as is."""
    if not isinstance(url_or_path, str | Path):
        return url_or_path
    spec = str(url_or_path)
    if spec.startswith(("postgresql://", "postgres://")):
        from memp.store.postgres import PostgresStore  # optional extra: import lazily

        return PostgresStore(spec)
    if spec.startswith("sqlite:///"):
        spec = spec[len("sqlite:///") :]
    elif "://" in spec:
        from memp.errors import InvalidInput

        raise InvalidInput(
            f"unknown store URL {spec!r}; give a SQLite file path (memp.db, sqlite:///path/memp.db) "
            "or a postgresql:// URL"
        )
    from memp.store.sqlite import SQLiteStore

    return SQLiteStore(spec)


__all__ = ["MemoryStore", "VectorKind", "open_store"]
