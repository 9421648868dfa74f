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


def test_ids_are_scoped_to_their_namespace(store):
    """Another namespace's id is neither visible nor taken: reusing it makes a separate record."""
    rng = np.random.default_rng(10)
    a = proc(rng, namespace="a", task="task of a")
    store.add([a])
    store.update(store.get(a.id).model_copy(update={"script": "a v2"}), reason="edit")
    store.record_usage(a.id, retrieved=1, namespace="a")
    b = proc(rng, namespace="b", task="task of b").model_copy(update={"id": a.id})
    store.add([b])  # not "already exists": that answer would reveal a's id
    with pytest.raises(InvalidInput, match="already exists"):
        store.add([b])  # within one namespace ids stay unique
    store.update(store.get(a.id, namespace="b").model_copy(update={"script": "b v2"}), reason="r")
    store.set_status(a.id, ProcedureStatus.RETIRED, namespace="b")
    store.record_usage(a.id, failed=5, namespace="b")
    got = store.get(a.id, namespace="a")
    assert (got.task, got.script, got.version, got.status) == ("task of a", "a v2", 2, "active")
    assert (got.usage.retrieved, got.usage.failed) == (1, 0)
    assert [h.script for h in store.history(a.id, namespace="a")] == [a.script, "a v2"]
    assert [h.script for h in store.history(a.id, namespace="b")] == [b.script, "b v2"]
    assert store.get(a.id, namespace="b").usage.failed == 5
    assert [pid for pid, _ in store.search(np.asarray(a.embedding), namespace="a")] == [a.id]
    assert store.search(np.asarray(b.embedding), namespace="b") == []  # b's is retired
    # Without a namespace an id held by two is ambiguous: refused, never a guess.
    with pytest.raises(InvalidInput, match="several namespaces"):
        store.get(a.id)
    with pytest.raises(InvalidInput, match="several namespaces"):
        store.record_usage(a.id, retrieved=1)
    # The same for trajectories.
    t = Trajectory(task="heat an egg", environment="alfworld")
    store.add_trajectory(t, namespace="a")
    other = t.model_copy(update={"task": "b's own", "success": True})
    store.add_trajectory(other, namespace="b")
    assert store.get_trajectory(t.id, namespace="a") == t
    assert store.get_trajectory(t.id, namespace="b") == other
    record = {"type": "trajectory", "namespace": "c", "record": other.model_dump(mode="json")}
    assert store.import_records([record]) == 1
    assert store.get_trajectory(t.id, namespace="a") == t
    with pytest.raises(InvalidInput, match="several namespaces"):
        store.get_trajectory(t.id)


def test_import_acts_only_within_the_records_namespace(store):
    rng = np.random.default_rng(11)
    a = proc(rng, namespace="a", task="task of a")
    store.add([a])
    store.update(store.get(a.id).model_copy(update={"script": "a v2"}), reason="edit")
    before = list(store.export_records(namespace="a"))
    # b's records reusing a's id, with replace=True: a procedure and a "poisoned" version
    b = proc(rng, namespace="b", task="task of b").model_copy(update={"id": a.id})
    poisoned = b.model_copy(update={"version": 1, "script": "poisoned"})
    records = [
        {"type": "version", "record": poisoned.model_dump(mode="json")},
        {
            "type": "procedure",
            "record": b.model_copy(update={"version": 2}).model_dump(mode="json"),
        },
    ]
    assert store.import_records(records, replace=True) == 2
    assert list(store.export_records(namespace="a")) == before
    assert [h.script for h in store.history(a.id, namespace="a")] == [a.script, "a v2"]
    assert [h.script for h in store.history(a.id, namespace="b")] == ["poisoned", b.script]
    # An import bound to a namespace refuses records of any other.
    with pytest.raises(InvalidInput, match="record 1 belongs to namespace 'a'"):
        store.import_records(before, namespace="b")
    # A version whose procedure is neither imported nor stored in its namespace is refused.
    orphan = {
        "type": "version",
        "record": poisoned.model_copy(update={"namespace": "c"}).model_dump(mode="json"),
    }
    with pytest.raises(InvalidInput, match=r"record 1: .*no procedure"):
        store.import_records([orphan])
    # Without replace, an existing version is refused too (nothing is overwritten silently).
    with pytest.raises(InvalidInput, match="already exists"):
        store.import_records(records[:1])
    assert list(store.export_records(namespace="a")) == before


def test_a_store_of_the_first_schema_is_migrated_keeping_everything(location, monkeypatch):
    """Schema 1 keyed records by id alone; opening such a store moves it to (namespace, id)."""
    import memp.store.sqlite as sq

    postgres = "://" in location
    if postgres:
        import memp.store.postgres as mod
    else:
        mod = sq
        monkeypatch.setattr(sq, "SCHEMA_VERSION", 1)
    monkeypatch.setattr(mod, "MIGRATIONS", mod.MIGRATIONS[:1])
    rng = np.random.default_rng(12)
    pb = proc(rng, namespace="b", task="task of b")
    pa = proc(rng, namespace="a", task="task of a", version=2, script="a v2")
    v1 = pa.model_copy(update={"version": 1, "script": "a v1"})
    t = Trajectory(task="heat an egg", environment="alfworld", steps=[Step(action="go")])
    s = open_store(location)
    s.add([pb, pa])  # the INSERTs of schema 1 and 2 are the same
    from memp.store.records import snapshot

    if postgres:
        with s._tx() as cur:
            cur.execute(
                "INSERT INTO procedure_versions (procedure_id, version, snapshot) "
                "VALUES (%s, 1, %s)",
                (pa.id, snapshot(v1)),
            )
            cur.execute(
                "INSERT INTO trajectories (id, namespace, environment, data, created_at) "
                "VALUES (%s, 'a', %s, %s, %s)",
                (t.id, t.environment, t.model_dump_json(), t.created_at),
            )
    else:
        s._conn.execute(
            "INSERT INTO procedure_versions(id, version, snapshot) VALUES (?, 1, ?)",
            (pa.id, snapshot(v1)),
        )
        s._conn.execute(
            "INSERT INTO trajectories(id, namespace, environment, body) VALUES (?, 'a', ?, ?)",
            (t.id, t.environment, t.model_dump_json()),
        )
    s.close()
    monkeypatch.undo()
    s = open_store(location)
    try:
        assert [p.id for p in s.list()] == [pb.id, pa.id]  # the listing order is kept
        got = s.get(pa.id, namespace="a")
        assert (got.version, got.script) == (2, "a v2")
        assert np.allclose(got.fact_embeddings, pa.fact_embeddings, atol=1e-6)
        assert [h.script for h in s.history(pa.id, namespace="a")] == ["a v1", "a v2"]
        assert s.search(np.asarray(pa.embedding), k=1, namespace="a")[0][0] == pa.id
        assert s.get_trajectory(t.id, namespace="a") == t
        # and ids are now per namespace
        s.add([proc(rng, namespace="b").model_copy(update={"id": pa.id})])
        assert s.get(pa.id, namespace="a").script == "a v2"
    finally:
        s.close()


def test_embedder_identity_is_recorded_and_enforced(location):
    from memp.errors import EmbedderMismatch

    s = open_store(location)
    try:
        assert s.embedder_identity is None
        s.check_embedder("hash:16", 16)
        s.check_embedder("hash:16", 16)  # the same embedder again is fine
        with pytest.raises(EmbedderMismatch, match=r"'hash:16'.*'other:16'.*new store"):
            s.check_embedder("other:16", 16)
    finally:
        s.close()
    s = open_store(location)
    try:
        assert s.embedder_identity == {"name": "hash:16", "dim": 16}
        assert s.stats()["embedder"] == {"name": "hash:16", "dim": 16}
        with pytest.raises(EmbedderMismatch):
            s.check_embedder("other:16", 16)
    finally:
        s.close()


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


def test_a_rolled_back_first_write_fixes_no_dimension(store):
    """The first vectors fix the dimension only once their transaction commits."""
    rng = np.random.default_rng(13)
    first = proc(rng)
    with pytest.raises(InvalidInput, match="already exists"):
        store.add([first, first])
    assert store.dim is None and store.count() == 0
    small = Procedure(task="t", embedding=[0.6, 0.8])
    store.add([small])
    assert store.dim == 2
    assert store.search(np.asarray([0.6, 0.8]), k=1)[0][0] == small.id


def test_vectors_written_through_another_handle_are_found(location):
    """A store opened before any vector exists finds those another process writes."""
    rng = np.random.default_rng(14)
    reader, writer = open_store(location), open_store(location)
    try:
        assert reader.search(unit(rng)[0], k=1) == []
        p = proc(rng)
        writer.add([p])
        assert reader.dim == DIM
        assert reader.search(np.asarray(p.embedding), k=1)[0][0] == p.id
    finally:
        reader.close()
        writer.close()
