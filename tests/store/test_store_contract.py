"""One contract, every backend: the same tests run on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from memp.errors import DimensionMismatch, InvalidInput, NotFound, UnknownOption
from memp.store import open_store
from memp.store.base import MemoryStore
from memp.types import Procedure, ProcedureStatus, Step, Trajectory

DIM = 16


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "memp.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(location):
    s = open_store(location)
    yield s
    s.close()


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def proc(rng: np.random.Generator, **kw) -> Procedure:
    kw.setdefault("task", "put a clean apple in the fridge")
    kw.setdefault("script", "1. find the apple\n2. clean it\n3. put it in the fridge")
    return Procedure(
        embedding=unit(rng)[0].tolist(),
        key_embedding=unit(rng)[0].tolist(),
        fact_embeddings=unit(rng, 2).tolist(),
        **kw,
    )


def test_implements_protocol(store):
    assert isinstance(store, MemoryStore)
    assert store.dim is None


def test_round_trip_keeps_every_field(store):
    rng = np.random.default_rng(1)
    p = proc(rng, environment="alfworld", facts=["apple", "fridge"], metadata={"k": [1, 2]})
    store.add([p])
    got = store.get(p.id)
    assert store.dim == DIM
    assert got.model_dump(
        exclude={"embedding", "key_embedding", "fact_embeddings"}
    ) == p.model_dump(exclude={"embedding", "key_embedding", "fact_embeddings"})
    assert np.allclose(got.embedding, p.embedding, atol=1e-6)
    assert np.allclose(got.key_embedding, p.key_embedding, atol=1e-6)
    assert np.allclose(got.fact_embeddings, p.fact_embeddings, atol=1e-6)


def test_a_failed_batch_stores_nothing(store):
    rng = np.random.default_rng(2)
    first = proc(rng)
    store.add([first])
    with pytest.raises(InvalidInput, match="already exists"):
        store.add([proc(rng), proc(rng), first])
    assert store.count() == 1
    bad = proc(rng)
    bad.embedding = [1.0] * (DIM + 1)
    with pytest.raises(DimensionMismatch):
        store.add([proc(rng), bad])
    assert store.count() == 1
    with pytest.raises(DimensionMismatch):
        store.search(np.ones(DIM + 3, dtype=np.float32))


def test_update_keeps_history_usage_and_status(store):
    rng = np.random.default_rng(3)
    p = proc(rng)
    store.add([p])
    store.record_usage(p.id, retrieved=2, failed=1)
    new = store.get(p.id).model_copy(
        update={
            "script": "1. rewritten",
            "embedding": None,
            "key_embedding": None,
            "fact_embeddings": [],
        }
    )
    updated = store.update(new, reason="failed twice")
    assert updated.version == 2 and updated.script == "1. rewritten"
    assert updated.metadata["change_reason"] == "failed twice"
    assert (updated.usage.retrieved, updated.usage.failed) == (2, 1)
    # vectors the new record leaves out are kept
    assert np.allclose(updated.embedding, p.embedding, atol=1e-6)
    hist = store.history(p.id)
    assert [h.version for h in hist] == [1, 2]
    assert hist[0].script == p.script and hist[-1].script == "1. rewritten"
    with pytest.raises(NotFound):
        store.update(proc(rng))


def test_list_count_filters_and_order(store):
    rng = np.random.default_rng(4)
    procs = [
        proc(
            rng,
            task=f"task {i}",
            namespace="a" if i % 2 else "b",
            environment="x" if i < 6 else "y",
        )
        for i in range(10)
    ]
    store.add(procs)
    assert [p.id for p in store.list()] == [p.id for p in procs]
    assert store.count() == 10 and store.count(namespace="a") == 5
    assert store.count(namespace="a", environment="x") == 3
    assert [p.id for p in store.list(limit=3, offset=2)] == [p.id for p in procs[2:5]]
    store.set_status(procs[0].id, ProcedureStatus.RETIRED)
    assert store.count() == 9 and store.count(status=None) == 10
    assert store.count(status=ProcedureStatus.RETIRED) == 1
    assert procs[0].id not in [p.id for p in store.list()]
    assert store.get(procs[0].id).status == ProcedureStatus.RETIRED


def test_namespace_scopes_every_read_and_write(store):
    rng = np.random.default_rng(5)
    p = proc(rng, namespace="a")
    store.add([p])
    assert store.get(p.id, namespace="a").id == p.id
    for call in (
        lambda: store.get(p.id, namespace="b"),
        lambda: store.history(p.id, namespace="b"),
        lambda: store.set_status(p.id, ProcedureStatus.RETIRED, namespace="b"),
        lambda: store.record_usage(p.id, retrieved=1, namespace="b"),
    ):
        with pytest.raises(NotFound):
            call()
    got = store.get(p.id)
    assert got.status == ProcedureStatus.ACTIVE and got.usage.retrieved == 0
    assert store.search(np.asarray(p.embedding), namespace="b") == []
    assert store.list(namespace="b") == []


def test_search_top_k_with_filters(store):
    """SQLite searches exactly; PostgreSQL walks an HNSW index (approximate)."""
    approximate = type(store).__name__ == "PostgresStore"
    rng = np.random.default_rng(6)
    procs = [
        proc(rng, namespace=("a", "b")[i % 2], environment=("x", "y", "z")[i % 3])
        for i in range(240)
    ]
    store.add(procs)
    store.set_status(procs[5].id, ProcedureStatus.RETIRED)
    mat = np.asarray([p.embedding for p in procs], dtype=np.float32)
    q = unit(rng)[0]
    for ns, env, k in [(None, None, 10), ("a", None, 7), ("b", "z", 50), ("a", "y", 200)]:
        keep = [
            i
            for i, p in enumerate(procs)
            if i != 5
            and (ns is None or p.namespace == ns)
            and (env is None or p.environment == env)
        ]
        want = sorted(keep, key=lambda i: -float(mat[i] @ q))[:k]
        got = store.search(q, k=k, namespace=ns, environment=env)
        ids = [pid for pid, _ in got]
        if approximate:
            # HNSW: the right size, in scope, true cosines, best first, recall >= 0.9
            assert len(ids) == len(want) and set(ids) <= {procs[i].id for i in keep}
            true = {procs[i].id: float(mat[i] @ q) for i in keep}
            assert np.allclose([s for _, s in got], [true[i] for i in ids], atol=1e-5)
            assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
            assert len(set(ids) & {procs[i].id for i in want}) >= 0.9 * len(want)
            continue
        assert ids == [procs[i].id for i in want]
        assert np.allclose([s for _, s in got], [float(mat[i] @ q) for i in want], atol=1e-5)
    # facts: a procedure scores as its best fact
    facts = {
        p.id: max(float(np.asarray(f) @ q) for f in p.fact_embeddings)
        for i, p in enumerate(procs)
        if i != 5
    }
    want_f = sorted(facts, key=lambda pid: -facts[pid])[:5]
    assert [pid for pid, _ in store.search(q, kind="fact", k=5)] == want_f
    with pytest.raises(UnknownOption):
        store.search(q, kind="nope")  # type: ignore[arg-type]


def test_usage_increments_are_atomic(store):
    rng = np.random.default_rng(7)
    p = proc(rng)
    store.add([p])

    def bump() -> None:
        for _ in range(40):
            store.record_usage(p.id, retrieved=1, succeeded=1)
            store.record_usage(p.id, failed=2)

    with ThreadPoolExecutor(6) as pool:
        for f in [pool.submit(bump) for _ in range(6)]:
            f.result()  # re-raises any error in a worker
    u = store.get(p.id).usage
    assert (u.retrieved, u.succeeded, u.failed) == (240, 240, 480)
    assert u.last_used_at is not None


def test_trajectories(store):
    t1 = Trajectory(
        task="heat an egg", environment="alfworld", steps=[Step(action="go to microwave 1")]
    )
    t2 = Trajectory(task="cool an egg", environment="twx", success=True)
    store.add_trajectory(t1, namespace="a")
    store.add_trajectory(t2, namespace="b")
    assert store.get_trajectory(t1.id, namespace="a") == t1
    with pytest.raises(NotFound):
        store.get_trajectory(t1.id, namespace="b")
    assert [t.id for t in store.list_trajectories(namespace="a")] == [t1.id]
    assert [t.id for t in store.list_trajectories(environment="twx")] == [t2.id]
    assert len(store.list_trajectories()) == 2
    store.add_trajectory(t1.model_copy(update={"success": True}), namespace="a")
    assert store.get_trajectory(t1.id).success is True
    assert len(store.list_trajectories()) == 2
    # A replaced trajectory keeps its place in the listing.
    assert [t.id for t in store.list_trajectories()] == [t1.id, t2.id]


def test_trajectory_id_of_another_namespace_is_refused(store):
    t = Trajectory(task="heat an egg", environment="alfworld")
    store.add_trajectory(t, namespace="a")
    stolen = t.model_copy(update={"success": True})
    with pytest.raises(InvalidInput, match="taken in another namespace"):
        store.add_trajectory(stolen, namespace="b")
    record = {"type": "trajectory", "namespace": "b", "record": stolen.model_dump(mode="json")}
    with pytest.raises(InvalidInput, match="taken in another namespace"):
        store.import_records([record])
    # Both refusals left the stored trajectory as it was.
    assert store.get_trajectory(t.id, namespace="a") == t
    assert [x.id for x in store.list_trajectories(namespace="b")] == []


def test_reopen_keeps_everything(location):
    rng = np.random.default_rng(8)
    s = open_store(location)
    p = proc(rng)
    s.add([p])
    s.update(s.get(p.id).model_copy(update={"script": "v2"}), reason="r")
    s.close()
    s = open_store(location)
    try:
        assert s.dim == DIM and s.get(p.id).version == 2 and len(s.history(p.id)) == 2
        assert s.search(np.asarray(p.embedding), k=1)[0][0] == p.id
    finally:
        s.close()


def test_export_import_round_trip_across_backends(store, tmp_path, postgres_url):
    rng = np.random.default_rng(9)
    p = proc(rng, namespace="a")
    store.add([p, proc(rng, namespace="b")])
    store.update(store.get(p.id).model_copy(update={"script": "v2"}), reason="r")
    store.record_usage(p.id, succeeded=3)
    store.add_trajectory(Trajectory(task="t"), namespace="a")
    records = list(store.export_records(namespace="a"))
    assert [r["type"] for r in records] == ["version", "procedure", "trajectory"]
    # into the other backend
    from memp.store.sqlite import SQLiteStore

    other = open_store(postgres_url if isinstance(store, SQLiteStore) else str(tmp_path / "o.db"))
    try:
        assert other.import_records(records) == 3
        got = other.get(p.id)
        assert got.version == 2 and got.usage.succeeded == 3 and got.namespace == "a"
        assert [h.script for h in other.history(p.id)] == [p.script, "v2"]
        assert len(other.list_trajectories(namespace="a")) == 1
        with pytest.raises(InvalidInput, match="already exists"):
            other.import_records(records)
        assert other.import_records(records, replace=True) == 3
    finally:
        other.close()


def test_postgres_search_walks_the_hnsw_index(postgres_url):
    """The real search path uses the HNSW index (counted by PostgreSQL itself)."""
    import time

    import psycopg

    store = open_store(postgres_url)
    rng = np.random.default_rng(9)
    store.add([proc(rng, environment="x") for _ in range(3000)])

    def scans() -> int:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes "
                "WHERE indexrelname = 'vectors_hnsw_task' AND schemaname = current_schema()"
            ).fetchone()
            return int(row[0])

    before = scans()
    q = unit(rng)[0]
    assert len(store.search(q, k=10)) == 10
    store.close()  # the server flushes a backend's statistics when it goes away
    deadline = time.monotonic() + 15
    while scans() == before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert scans() > before
