"""The SQLite store: migrations, vectors, concurrency, crash safety, exact search."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import memp.store.sqlite as sq
from memp.errors import DimensionMismatch, InvalidInput, NotFound, StoreError
from memp.store import open_store
from memp.store.sqlite import SCHEMA_VERSION, SQLiteStore
from memp.types import Procedure, ProcedureStatus


def unit(rng, n, dim=16):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def proc(vec, **kw) -> Procedure:
    return Procedure(task=kw.pop("task", "t"), embedding=np.asarray(vec).tolist(), **kw)


def test_open_store_dispatch(tmp_path):
    s = open_store(tmp_path / "a.db")
    assert isinstance(s, SQLiteStore)
    assert open_store(s) is s
    assert isinstance(open_store(f"sqlite:///{tmp_path}/b.db"), SQLiteStore)
    with pytest.raises(InvalidInput, match="postgresql://"):
        open_store("mysql://x/y")


def test_schema_version_and_pragmas(tmp_path):
    s = SQLiteStore(tmp_path / "a.db")
    c = s._conn
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_newer_schema_is_refused(tmp_path):
    SQLiteStore(tmp_path / "a.db").close()
    raw = sqlite3.connect(tmp_path / "a.db")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match=r"newer memp.*upgrade memp"):
        SQLiteStore(tmp_path / "a.db")


def test_pending_migrations_are_applied(tmp_path, monkeypatch):
    SQLiteStore(tmp_path / "a.db").close()
    monkeypatch.setattr(sq, "MIGRATIONS", [*sq.MIGRATIONS, "CREATE TABLE extra (x INTEGER)"])
    monkeypatch.setattr(sq, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    s = SQLiteStore(tmp_path / "a.db")
    assert s._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    s._conn.execute("SELECT * FROM extra").fetchall()


def test_not_a_store_file(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a memp SQLite store"):
        SQLiteStore(tmp_path / "junk.db")


def test_vectors_are_float32_blobs_and_dim_is_fixed(tmp_path):
    rng = np.random.default_rng(0)
    s = SQLiteStore(tmp_path / "a.db")
    v = unit(rng, 1)[0]
    p = proc(v, fact_embeddings=unit(rng, 2).tolist())
    s.add([p])
    assert s.dim == 16
    blob = s._conn.execute("SELECT vec FROM vectors WHERE kind='task'").fetchone()[0]
    assert np.array_equal(np.frombuffer(blob, dtype=np.float32), v)
    with pytest.raises(DimensionMismatch, match=r"8 dimensions.*16-dimensional"):
        s.add([proc(unit(rng, 1, dim=8)[0])])
    with pytest.raises(DimensionMismatch):
        s.search(np.ones(8, dtype=np.float32))
    assert s.count() == 1  # the failed add wrote nothing


def test_duplicate_id_rolls_back_whole_batch(tmp_path):
    rng = np.random.default_rng(0)
    s = SQLiteStore(tmp_path / "a.db")
    a = proc(unit(rng, 1)[0])
    s.add([a])
    with pytest.raises(InvalidInput, match="already exists"):
        s.add([proc(unit(rng, 1)[0]), a])
    assert s.count() == 1


def test_search_is_exact_and_matches_brute_force(tmp_path):
    rng = np.random.default_rng(1)
    s = SQLiteStore(tmp_path / "a.db")
    X = unit(rng, 500)
    ps = [proc(x, environment="a" if i % 2 else "b") for i, x in enumerate(X)]
    s.add(ps)
    q = unit(rng, 1)[0]
    expect = np.argsort(-(X @ q))[:7]
    got = s.search(q, k=7)
    assert [pid for pid, _ in got] == [ps[i].id for i in expect]
    assert [sc for _, sc in got] == pytest.approx((X @ q)[expect].tolist(), abs=1e-5)
    only_a = [i for i in np.argsort(-(X @ q)) if i % 2][:5]
    assert [pid for pid, _ in s.search(q, k=5, environment="a")] == [ps[i].id for i in only_a]
    assert s.search(q, k=5, environment="nope") == []
    assert s.search(q, k=5, namespace="other") == []


def test_fact_search_returns_best_fact_per_procedure(tmp_path):
    rng = np.random.default_rng(2)
    s = SQLiteStore(tmp_path / "a.db")
    F = unit(rng, 6)
    a = proc(F[0], fact_embeddings=F[:3].tolist())
    b = proc(F[3], fact_embeddings=F[3:].tolist())
    s.add([a, b])
    got = s.search(F[1], kind="fact", k=2)
    assert got[0] == (a.id, pytest.approx(1.0, abs=1e-5))
    assert got[1][0] == b.id and got[1][1] == pytest.approx(float((F[3:] @ F[1]).max()), abs=1e-5)


def test_cache_sees_writes_of_another_connection(tmp_path):
    rng = np.random.default_rng(3)
    X = unit(rng, 4)
    reader, writer = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "a.db")
    p0 = proc(X[0])
    writer.add([p0])
    assert reader.search(X[0], k=1)[0][0] == p0.id  # loads the matrix
    p1 = proc(X[1])
    writer.add([p1])
    assert reader.search(X[1], k=1)[0][0] == p1.id  # new row seen incrementally
    writer.set_status(p1.id, ProcedureStatus.RETIRED)
    assert [pid for pid, _ in reader.search(X[1], k=5)] == [p0.id]  # retirement seen
    writer.update(writer.get(p0.id).model_copy(update={"embedding": X[2].tolist()}), reason="re")
    assert reader.search(X[2], k=1)[0] == (p0.id, pytest.approx(1.0, abs=1e-5))
    assert len(reader.search(X[0], k=5)) == 1  # the old vector is gone


def test_update_keeps_history_usage_and_status(tmp_path):
    rng = np.random.default_rng(4)
    s = SQLiteStore(tmp_path / "a.db")
    p = proc(unit(rng, 1)[0], script="1. old")
    s.add([p])
    s.record_usage(p.id, retrieved=2, succeeded=1)
    new = s.update(
        s.get(p.id).model_copy(update={"script": "1. new", "embedding": None}), reason="fix"
    )
    assert new.version == 2 and new.script == "1. new" and new.usage.retrieved == 2
    assert new.embedding == p.embedding  # not given: the stored vector is kept
    h = s.history(p.id)
    assert [(v.version, v.script) for v in h] == [(1, "1. old"), (2, "1. new")]
    assert h[1].metadata["change_reason"] == "fix"
    with pytest.raises(NotFound):
        s.get("missing")
    with pytest.raises(NotFound):
        s.record_usage("missing", retrieved=1)


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from memp.store.sqlite import SQLiteStore
    from memp.types import Procedure
    path, worker, n, shared = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    s = SQLiteStore(path)
    rng = np.random.default_rng(worker)
    i = 0
    while n < 0 or i < n:
        v = rng.standard_normal(16).astype(np.float32)
        pid = f"w{worker}-{i}"
        s.add([Procedure(id=pid, task="x " * 200, embedding=(v / np.linalg.norm(v)).tolist())])
        if shared != "-":
            s.record_usage(shared, retrieved=1)
        print(pid, flush=True)
        i += 1
    """
)


def test_many_processes_writing_lose_nothing(tmp_path):
    path = tmp_path / "c.db"
    s = SQLiteStore(path)
    shared = proc(np.eye(16, dtype=np.float32)[0])
    s.add([shared])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(w), "200", shared.id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert s.count() == 1 + 8 * 200
    ids = {r[0] for r in s._conn.execute("SELECT id FROM procedures")}
    assert all(f"w{w}-{i}" in ids for w in range(8) for i in range(200))
    assert s.get(shared.id).usage.retrieved == 8 * 200
    assert s._conn.execute("SELECT count(*) FROM vectors").fetchone()[0] == 1 + 8 * 200
    assert s.integrity_check() == "ok"


def test_kill_9_mid_write_loses_nothing_committed(tmp_path):
    path = tmp_path / "k.db"
    SQLiteStore(path).close()
    p = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "0", "-1", "-"],
        stdout=subprocess.PIPE,
        text=True,
    )
    committed = []
    assert p.stdout is not None
    while len(committed) < 150:
        line = p.stdout.readline()
        assert line, "writer died before being killed"
        committed.append(line.strip())
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    s = SQLiteStore(path)
    assert s.integrity_check() == "ok"
    ids = {r[0] for r in s._conn.execute("SELECT id FROM procedures")}
    assert set(committed) <= ids
    # Whatever got in is whole: every procedure has its vector.
    assert s._conn.execute("SELECT count(*) FROM vectors").fetchone()[0] == len(ids)
    for pid in ids:
        assert s.get(pid).embedding is not None
