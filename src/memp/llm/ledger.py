"""The usage ledger: every LLM call's tokens and latency, per run.

Backends built by :func:`memp.llm.make_llm` report each call to the ledgers that are
active at that moment (``with UsageLedger() as ledger: ...``), and to the process-wide
:data:`GLOBAL` ledger. A ledger can also append each record to a JSONL file, so a run's
cost survives the process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class CallRecord(BaseModel):
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    # Prompt tokens actually evaluated (local backend: the rest came from the KV cache).
    prompt_tokens_evaluated: int | None = None
    at: float = Field(default_factory=time.time)
    tag: str | None = None


class UsageSummary(BaseModel):
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    by_model: dict[str, dict[str, float]] = Field(default_factory=dict)


_ACTIVE: ContextVar[tuple[UsageLedger, ...]] = ContextVar("memp_active_ledgers", default=())


class UsageLedger:
    """Collects :class:`CallRecord` s; usable as a context manager to capture a run."""

    def __init__(self, path: str | Path | None = None, *, tag: str | None = None) -> None:
        self.path = Path(path) if path else None
        self.tag = tag
        self.records: list[CallRecord] = []
        self._lock = threading.Lock()
        self._token: Any = None

    def add(self, record: CallRecord) -> None:
        if record.tag is None and self.tag is not None:
            record = record.model_copy(update={"tag": self.tag})
        with self._lock:
            self.records.append(record)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(record.model_dump_json() + "\n")

    def summary(self) -> UsageSummary:
        s = UsageSummary()
        with self._lock:
            records = list(self.records)
        for r in records:
            s.calls += 1
            s.cached_calls += int(r.cached)
            s.prompt_tokens += r.prompt_tokens
            s.completion_tokens += r.completion_tokens
            s.latency_s += r.latency_s
            m = s.by_model.setdefault(
                r.model, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0}
            )
            m["calls"] += 1
            m["prompt_tokens"] += r.prompt_tokens
            m["completion_tokens"] += r.completion_tokens
            m["latency_s"] += r.latency_s
        return s

    def __iter__(self) -> Iterator[CallRecord]:
        return iter(list(self.records))

    def __len__(self) -> int:
        return len(self.records)

    @classmethod
    def load(cls, path: str | Path) -> UsageLedger:
        ledger = cls()
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                ledger.records.append(CallRecord.model_validate(json.loads(line)))
        return ledger

    def __enter__(self) -> UsageLedger:
        self._token = _ACTIVE.set((*_ACTIVE.get(), self))
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.reset(self._token)
        self._token = None


GLOBAL = UsageLedger()


def record_call(record: CallRecord) -> None:
    """Report one call to the global ledger and every ledger active in this context."""
    GLOBAL.add(record)
    for ledger in _ACTIVE.get():
        ledger.add(record)
