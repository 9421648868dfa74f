"""An on-disk completion cache, so repeated runs are reproducible and resumable.

Keyed by (model identity, messages, every decoding parameter). Greedy calls are cached;
sampled calls (temperature > 0) bypass the cache unless ``cache_sampled`` is set, since
a cached sample would silently turn sampling into replay.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from memp.llm.base import Completion, Message
from memp.llm.weights import cache_root


def default_cache_path() -> Path:
    return cache_root() / "completions.sqlite"


def cache_key(model: str, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
    payload = {
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(params.items())},
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class SQLiteFile:
    """A SQLite file with one table, shared safely by threads (a lock) and processes (WAL)."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(schema)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CompletionCache(SQLiteFile):
    """Map from cache key to Completion."""

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__(
            Path(path) if path else default_cache_path(),
            "CREATE TABLE IF NOT EXISTS completions ("
            " key TEXT PRIMARY KEY, model TEXT NOT NULL, completion TEXT NOT NULL,"
            " created REAL NOT NULL)",
        )

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT completion FROM completions WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return Completion.model_validate_json(row[0]).model_copy(update={"cached": True})

    def put(self, key: str, completion: Completion) -> None:
        data = completion.model_copy(update={"cached": False}).model_dump_json()
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO completions (key, model, completion, created)"
                " VALUES (?, ?, ?, ?)",
                (key, completion.model, data, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM completions").fetchone()[0])

    def clear(self) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM completions")
