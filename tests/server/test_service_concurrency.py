"""16 concurrent clients x 500 mixed operations against a real `memp serve` process:
no write is lost or duplicated, and the usage counters add up exactly."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from memp.server.http import serving
from memp.store import open_store
from memp.store.keys import keys_for
from memp.types import Step, Trajectory

CLIENTS = 16
OPS = 500
SEEDS = 4


def episode(task: str) -> dict:
    t = Trajectory(
        task=task, environment="alfworld", success=True, steps=[Step(action=f"do {task}")]
    )
    return t.model_dump(mode="json")


def client_run(url: str, token: str, seed_ids: list[str], cid: int) -> dict:
    rng = random.Random(cid)
    made: list[str] = []
    trajectories: list[str] = []
    retrieved: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    words = ["apple", "egg", "mug", "pan", "lamp", "book", "knife", "plate"]
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60) as c:
        for i in range(OPS):
            r = rng.random()
            task = f"put the {rng.choice(words)} in place {cid}-{i}"
            if r < 0.30:
                resp = c.post(
                    "/v1/trajectories", json={"trajectory": episode(task), "build": "trajectory"}
                )
                assert resp.status_code == 201, resp.text
                made.append(resp.json()["procedure"]["id"])
                trajectories.append(resp.json()["trajectory_id"])
            elif r < 0.45:
                resp = c.post("/v1/trajectories", json={"trajectory": episode(task)})
                assert resp.status_code == 201, resp.text
                trajectories.append(resp.json()["trajectory_id"])
            elif r < 0.80:
                resp = c.post("/v1/retrieve", json={"task": task, "k": 3})
                assert resp.status_code == 200, resp.text
                retrieved.update(h["procedure"]["id"] for h in resp.json()["hits"])
            else:
                ids = rng.sample(seed_ids + made, k=min(2, len(seed_ids) + len(made)))
                ok = rng.random() < 0.5
                resp = c.post("/v1/report", json={"procedure_ids": ids, "success": ok})
                assert resp.status_code == 200, resp.text
                (succeeded if ok else failed).update(ids)
    return {
        "made": made,
        "trajectories": trajectories,
        "retrieved": retrieved,
        "succeeded": succeeded,
        "failed": failed,
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_no_lost_or_duplicated_writes(backend, tmp_path, request):
    db = (
        str(tmp_path / "memp.db")
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    # keys and seed procedures are written before the server starts
    store = open_store(db)
    keys = keys_for(store, db)
    tokens = {ns: keys.create(ns)[1] for ns in ("a", "b")}
    keys.close()
    store.close()
    with serving(db) as url:
        seeds: dict[str, list[str]] = {}
        for ns, token in tokens.items():
            h = {"authorization": f"Bearer {token}"}
            seeds[ns] = [
                httpx.post(
                    f"{url}/v1/procedures",
                    headers=h,
                    json={"procedure": {"task": f"put the seed {j} in place", "script": "1. go"}},
                ).json()["id"]
                for j in range(SEEDS)
            ]
        plan = [("a" if cid % 2 else "b", cid) for cid in range(CLIENTS)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(
                pool.map(lambda p: (p[0], client_run(url, tokens[p[0]], seeds[p[0]], p[1])), plan)
            )

    store = open_store(db)
    try:
        for ns in ("a", "b"):
            mine = [r for n, r in results if n == ns]
            made = [pid for r in mine for pid in r["made"]]
            trajs = [tid for r in mine for tid in r["trajectories"]]
            assert len(set(made)) == len(made) and len(set(trajs)) == len(trajs)
            stored = store.list(namespace=ns)
            assert sorted(p.id for p in stored) == sorted(made + seeds[ns])  # none lost, none extra
            assert sorted(t.id for t in store.list_trajectories(namespace=ns)) == sorted(trajs)
            want = {k: Counter() for k in ("retrieved", "succeeded", "failed")}
            for r in mine:
                for k in want:
                    want[k].update(r[k])
            for p in stored:
                got = (p.usage.retrieved, p.usage.succeeded, p.usage.failed)
                assert got == (
                    want["retrieved"][p.id],
                    want["succeeded"][p.id],
                    want["failed"][p.id],
                ), p.id
        total_ops = sum(len(r["made"]) + len(r["trajectories"]) for _, r in results)
        assert total_ops > CLIENTS * OPS * 0.3
    finally:
        store.close()
