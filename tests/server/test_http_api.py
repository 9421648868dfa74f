"""The HTTP API end to end: a real uvicorn server on 127.0.0.1, the real store."""

from __future__ import annotations

import json

import httpx
import pytest

from memp.client import Client, PayloadTooLarge
from memp.errors import InvalidInput, NotFound, UnknownOption
from memp.server.http import Service, create_app, running
from memp.types import Outcome, Procedure, ProcedureStatus, Step, Trajectory

MAX_BODY = 64 * 1024


def episode(task: str, *actions: str, success: bool = True, env: str = "alfworld") -> Trajectory:
    return Trajectory(
        task=task,
        environment=env,
        success=success,
        steps=[Step(action=a, observation=f"you {a}") for a in actions],
    )


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    db = (
        str(tmp_path / "memp.db")
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    svc = Service(db, embedder="hash", llm="none")
    _, token = svc.keys.create("team-a")
    with running(create_app(db, service=svc, max_body=MAX_BODY)) as url:
        yield url, token, svc
    svc.close()


@pytest.fixture
def http(server):
    url, token, _ = server
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as c:
        yield c


def test_docs_and_health(server):
    url, _, _ = server
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    spec = httpx.get(f"{url}/openapi.json").json()
    for path in (
        "/v1/trajectories",
        "/v1/retrieve",
        "/v1/report",
        "/v1/procedures/{procedure_id}/history",
        "/v1/export",
    ):
        assert path in spec["paths"]
    assert httpx.get(f"{url}/docs").status_code == 200


def test_lifecycle_through_the_client(server, tmp_path):
    url, token, svc = server
    with Client(url, api_key=token) as mem:
        assert mem.namespace == "team-a"
        p = mem.add(
            episode(
                "put a clean apple in the fridge",
                "take apple",
                "clean apple",
                "put apple in fridge",
            ),
            strategy="trajectory",
        )
        mem.add(
            episode("heat an egg in the microwave", "take egg", "heat egg"), strategy="trajectory"
        )
        t = episode("cool a tomato", "take tomato", success=False)
        mem.record(t)
        assert mem.get_trajectory(t.id) == t
        assert p.trajectory is not None and mem.count() == 2

        hits = mem.retrieve("put a clean apple in the fridge", k=1)
        assert [h.procedure.id for h in hits] == [p.id]
        untracked = mem.retrieve("put a clean apple in the fridge", k=1, track=False)
        assert [h.procedure.id for h in untracked] == [p.id]  # not counted: see usage below
        assert "take apple" in mem.render(hits)
        mem.report([p.id], success=True)
        mem.report([p.id], success=False)
        u = mem.get(p.id).usage
        assert (u.retrieved, u.succeeded, u.failed) == (1, 1, 1)

        retired = mem.retire(p.id)
        assert retired.status == ProcedureStatus.RETIRED
        assert [x.id for x in mem.list()] != [p.id] and mem.count(status=None) == 2
        assert mem.retrieve("put a clean apple in the fridge", k=3)[0].procedure.id != p.id
        assert [h.version for h in mem.history(p.id)] == [1]

        # version history written by the engine shows through the API
        mem_local = svc.memory("team-a")
        mem_local.store.update(
            mem_local.get(p.id).model_copy(update={"script": "1. v2"}), reason="edit"
        )
        assert [h.script for h in mem.history(p.id)] == [None, "1. v2"]

        out = tmp_path / "export.jsonl"
        n = mem.export_jsonl(out)
        kinds = [json.loads(line)["type"] for line in out.read_text().splitlines()]
        assert n == len(kinds) and kinds.count("procedure") == 2 and kinds.count("trajectory") == 3
        with pytest.raises(InvalidInput, match="already exists"):
            mem.import_jsonl(out)
        assert mem.import_jsonl(out, replace=True) == n

        # an update round: one success is added, the failed use is counted
        won = episode("slice a bread", "take knife", "slice bread")
        lost = episode("heat an egg in the microwave", "take egg", success=False)
        egg = mem.retrieve("heat an egg in the microwave", k=1)[0].procedure.id
        rep = mem.update(
            [Outcome(trajectory=won), Outcome(trajectory=lost, used=[egg])],
            strategy="validation",
            build_strategy="trajectory",
        )
        assert len(rep.added) == 1 and rep.skipped == [lost.id]
        assert mem.get(egg).usage.failed == 1
        with pytest.raises(InvalidInput, match="unknown update option"):
            mem.update([Outcome(trajectory=won)], strategy="validation", build_stratgy="x")

        # two identical procedures are consolidated into one, the other retired
        twin_a = mem.add(
            episode("wash a plate", "take plate", "clean plate"), strategy="trajectory"
        )
        twin_b = mem.add(
            episode("wash a plate", "take plate", "clean plate"), strategy="trajectory"
        )
        merged = mem.merge_duplicates(threshold=0.99)
        assert {twin_a.id, twin_b.id} & set(merged.merged)
        assert {mem.get(twin_a.id).status, mem.get(twin_b.id).status} == {
            ProcedureStatus.ACTIVE,
            ProcedureStatus.RETIRED,
        }

        with pytest.raises(NotFound):
            mem.get("no-such-id")
        with pytest.raises(UnknownOption):
            mem.retrieve("x", strategy="psychic")


def test_add_procedure_and_build_without_storing(http):
    r = http.post(
        "/v1/procedures",
        json={"procedure": {"task": "water the plant", "script": "1. fill can\n2. pour"}},
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["namespace"] == "team-a" and "embedding" not in r.json()
    assert http.get(f"/v1/procedures/{pid}", params={"vectors": "true"}).json()["embedding"]
    r = http.post(
        "/v1/build",
        json={
            "trajectory": episode("t", "a").model_dump(mode="json"),
            "strategy": "trajectory",
            "store": False,
        },
    )
    assert r.status_code == 201 and r.json()["trajectory"]["steps"][0]["action"] == "a"
    assert http.get("/v1/procedures/count").json()["count"] == 1
    assert http.get("/v1/trajectories").json() == []


def totals(svc: Service) -> tuple[int, int]:
    return svc.store.count(status=None), len(svc.store.list_trajectories())


def test_bad_requests_are_clear_4xx_and_store_nothing(server, http):
    url, _, svc = server
    good = {"trajectory": episode("t", "go").model_dump(mode="json"), "build": "trajectory"}
    before = totals(svc)

    r = http.post(
        "/v1/trajectories",
        content=b'{"trajectory": {"task": "t",',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"

    r = http.post("/v1/trajectories", json={**good, "bulid": "trajectory"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_field"
    assert "bulid" in r.json()["error"]["message"]

    nested = json.loads(json.dumps(good))
    nested["trajectory"]["steps"][0]["acton"] = "typo"
    r = http.post("/v1/trajectories", json=nested)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_field"

    r = http.post("/v1/trajectories", json={"trajectory": {"steps": []}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"

    big = episode("t", *["x" * 1000] * 100).model_dump(mode="json")
    r = http.post("/v1/trajectories", json={"trajectory": big})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit must hold for streamed bodies too
        yield b'{"trajectory": {"task": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}}'

    r = http.post(
        "/v1/trajectories", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413

    r = http.post("/v1/build", json={"trajectory": good["trajectory"], "strategy": "script"})
    assert r.status_code == 422 and "--llm" in r.json()["error"]["message"]

    r = http.post("/v1/build", json={"trajectory": good["trajectory"], "strategy": "nope"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_option"

    r = http.post("/v1/report", json={"procedure_ids": ["missing"], "success": True})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    r = httpx.post(f"{url}/v1/trajectories", json=good)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(
        f"{url}/v1/trajectories",
        json=good,
        headers={"authorization": "Bearer memp_000000000000_forged-secret-forged-secret"},
    )
    assert r.status_code == 401

    assert totals(svc) == before
    with (
        pytest.raises(PayloadTooLarge),
        Client(url, api_key=http.headers["authorization"][7:]) as c,
    ):
        c.record(episode("t", *["z" * 1000] * 100))
    assert http.post("/v1/trajectories", json=good).status_code == 201
    assert totals(svc) == (before[0] + 1, before[1] + 1)


def test_procedure_ids_in_the_body_cannot_escape_the_namespace(http):
    p = Procedure(task="x", namespace="someone-else")
    r = http.post("/v1/procedures", json={"procedure": p.model_dump(mode="json")})
    assert r.status_code == 403


def test_failed_episodes_are_recorded_but_not_built_unless_kept(http):
    lost = episode("cool a tomato", "take tomato", success=False)
    r = http.post(
        "/v1/trajectories",
        json={"trajectory": lost.model_dump(mode="json"), "build": "trajectory"},
    )
    assert r.status_code == 201 and r.json()["procedure"] is None
    assert r.json()["skipped"].startswith("not built: the trajectory failed")
    assert http.get(f"/v1/trajectories/{lost.id}").json()["success"] is False
    body = {"trajectory": lost.model_dump(mode="json"), "strategy": "trajectory"}
    r = http.post("/v1/build", json=body)
    assert r.status_code == 422 and "keep_failed" in r.json()["error"]["message"]
    assert http.get("/v1/procedures/count").json()["count"] == 0
    r = http.post("/v1/build", json={**body, "keep_failed": True})
    assert r.status_code == 201 and r.json()["metadata"]["source_success"] is False
    rendered = http.post("/v1/retrieve", json={"task": "cool a tomato"}).json()["rendered"]
    assert "worked" not in rendered and "failed" in rendered
