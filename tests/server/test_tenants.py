"""Tenant isolation: a key reads and writes only its own namespace, on every endpoint."""

from __future__ import annotations

import json

import httpx
import pytest

from memp.server.http import Service, create_app, running
from memp.store.keys import SQLiteKeyStore, check_namespace
from memp.types import Outcome, Procedure, Step, Trajectory


@pytest.fixture(params=["sqlite", "postgres"])
def world(request, tmp_path):
    db = (
        str(tmp_path / "memp.db")
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    svc = Service(db, embedder="hash", llm="none")
    _, key_a = svc.keys.create("a", name="alice")
    _, key_b = svc.keys.create("b", name="bob")
    with running(create_app(db, service=svc)) as url:
        a = httpx.Client(base_url=url, headers={"authorization": f"Bearer {key_a}"})
        b = httpx.Client(base_url=url, headers={"authorization": f"Bearer {key_b}"})
        t = Trajectory(
            task="put a clean apple in the fridge", success=True, steps=[Step(action="take apple")]
        )
        r = a.post(
            "/v1/trajectories",
            json={"trajectory": t.model_dump(mode="json"), "build": "trajectory"},
        )
        assert r.status_code == 201, r.text
        yield svc, a, b, r.json()["procedure"]["id"], t, url
        a.close()
        b.close()
    svc.close()


def snapshot(svc: Service) -> str:
    """Everything stored, to compare before and after the attempts."""
    return json.dumps(list(svc.store.export_records()), sort_keys=True, default=str)


def test_every_endpoint_is_scoped(world):
    svc, a, b, pid, t, url = world
    # a twin of a's procedure, so that a merge that crossed namespaces would change a's data
    twin = t.model_copy(update={"id": t.id + "-twin"}).model_dump(mode="json")
    assert a.post("/v1/trajectories", json={"trajectory": twin, "build": "trajectory"}).status_code == 201
    before = snapshot(svc)
    covered: set[tuple[str, str]] = set()

    def check(method: str, route: str, path: str, expect: int, **kw) -> httpx.Response:
        r = b.request(method, path, **kw)
        assert r.status_code == expect, (method, path, r.status_code, r.text)
        covered.add((method.lower(), route))
        return r

    P = "/v1/procedures/{procedure_id}"
    check("GET", P, f"/v1/procedures/{pid}", 404)
    check("GET", P + "/history", f"/v1/procedures/{pid}/history", 404)
    check("POST", P + "/retire", f"/v1/procedures/{pid}/retire", 404)
    check("POST", "/v1/report", "/v1/report", 404, json={"procedure_ids": [pid], "success": False})
    outcome = Outcome(trajectory=Trajectory(task="x", success=False), used=[pid])
    check(
        "POST",
        "/v1/update",
        "/v1/update",
        404,
        json={"outcomes": [outcome.model_dump(mode="json")], "strategy": "erasure"},
    )
    check("GET", "/v1/trajectories/{trajectory_id}", f"/v1/trajectories/{t.id}", 404)
    assert check("GET", "/v1/trajectories", "/v1/trajectories", 200).json() == []
    assert (
        check("GET", "/v1/procedures", "/v1/procedures", 200, params={"status": "all"}).json() == []
    )
    assert check("GET", "/v1/procedures/count", "/v1/procedures/count", 200).json() == {"count": 0}
    hits = check("POST", "/v1/retrieve", "/v1/retrieve", 200, json={"task": t.task, "k": 5}).json()
    assert hits["hits"] == [] and hits["rendered"] == ""
    assert check("GET", "/v1/export", "/v1/export", 200).text == ""
    exported = a.get("/v1/export").text
    check("POST", "/v1/import", "/v1/import", 403, content=exported, params={"replace": "true"})
    # writing into a's namespace by naming it, or by reusing a's ids
    foreign = Procedure(task="x", namespace="a").model_dump(mode="json")
    check("POST", "/v1/procedures", "/v1/procedures", 403, json={"procedure": foreign})
    hijack = t.model_copy(update={"task": "overwritten"}).model_dump(mode="json")
    check("POST", "/v1/trajectories", "/v1/trajectories", 409, json={"trajectory": hijack})
    check(
        "POST", "/v1/build", "/v1/build", 409, json={"trajectory": hijack, "strategy": "trajectory"}
    )
    assert check("POST", "/v1/merge", "/v1/merge", 200, json={"threshold": 0.5}).json()["merged"] == {}
    assert check("GET", "/v1/whoami", "/v1/whoami", 200).json() == {"namespace": "b"}

    assert snapshot(svc) == before  # nothing of a's changed, nothing leaked into b

    # every /v1 route of the API was tried
    spec = httpx.get(f"{url}/openapi.json").json()
    routes = {(m, p) for p, ops in spec["paths"].items() if p.startswith("/v1") for m in ops}
    assert routes == covered

    # and each one refuses a request with no key at all
    for method, route in routes:
        path = route.replace("{procedure_id}", pid).replace("{trajectory_id}", t.id)
        assert httpx.request(method, url + path).status_code == 401, (method, route)

    # a's own key still sees its data
    assert a.get(f"/v1/procedures/{pid}").status_code == 200
    assert pid in [h["procedure"]["id"] for h in a.post("/v1/retrieve", json={"task": t.task}).json()["hits"]]
    # and a's own merge does fold the twin
    assert len(a.post("/v1/merge", json={"threshold": 0.99}).json()["merged"]) == 1


def test_revoked_keys_stop_working_and_keys_are_stored_hashed(world, tmp_path):
    svc, url = world[0], world[5]
    key, token = svc.keys.create("c")
    c = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"})
    assert c.get("/v1/whoami").json() == {"namespace": "c"}
    svc.keys.revoke(key.id)
    assert c.get("/v1/whoami").status_code == 401
    assert not svc.keys.list(namespace="c")[0].active
    assert {k.namespace for k in svc.keys.list(include_revoked=False)} == {"a", "b"}
    # a wrong secret with a real key id is refused
    forged = f"memp_{key.id}_{'x' * 43}"
    assert c.get("/v1/whoami", headers={"authorization": f"Bearer {forged}"}).status_code == 401

    ks = SQLiteKeyStore(tmp_path / "keys.db")
    _, secret_token = ks.create("z")
    raw = ks._conn.execute("SELECT * FROM api_keys").fetchall()
    assert secret_token.split("_", 2)[2] not in repr([tuple(r) for r in raw])
    assert ks.verify(secret_token).namespace == "z"
    ks.close()
    with pytest.raises(ValueError, match="invalid namespace"):
        check_namespace("../etc")


def test_keys_cli(tmp_path):
    from typer.testing import CliRunner

    from memp.cli import app

    db = str(tmp_path / "memp.db")
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "team-x", "--name", "ci", "--db", db])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    ks = SQLiteKeyStore(db)
    key = ks.verify(token)
    assert key is not None and key.namespace == "team-x"
    listed = runner.invoke(app, ["keys", "list", "--db", db])
    assert key.id in listed.stdout and "active" in listed.stdout and token not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", key.id, "--db", db]).exit_code == 0
    assert ks.verify(token) is None
    bad = runner.invoke(app, ["keys", "create", "bad namespace!", "--db", db])
    assert bad.exit_code != 0
    ks.close()
