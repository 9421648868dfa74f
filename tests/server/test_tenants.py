"""Tenant isolation: a key reads and writes only its own namespace, on every endpoint."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from fastapi.routing import APIRoute

from memp.server.http import Service, create_app, running
from memp.store.keys import SQLiteKeyStore, check_namespace
from memp.types import Outcome, Procedure, Step, Trajectory

SECRET = "zanzibar"  # a word only tenant a's data contains


@dataclass
class World:
    svc: Service
    app: Any
    url: str
    keys: dict[str, str]
    a: httpx.Client
    pid: str  # a's procedure (two versions, usage counted)
    tid: str  # a's trajectory
    sid: str = ""  # a's skill session

    def client(self, ns: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {self.keys[ns]}"}, timeout=60
        )


@pytest.fixture(params=["sqlite", "postgres"])
def world(request, tmp_path):
    db = (
        str(tmp_path / "memp.db")
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    svc = Service(db, embedder="hash", llm="none")
    keys = {ns: svc.keys.create(ns, name=ns)[1] for ns in ("a", "b", "b1", "b2")}
    app = create_app(db, service=svc)
    with running(app) as url:
        w = World(svc, app, url, keys, None, "", "")  # type: ignore[arg-type]
        w.a = w.client("a")
        t = Trajectory(
            task=f"put a clean {SECRET} apple in the fridge",
            success=True,
            steps=[Step(action=f"take {SECRET} apple")],
        )
        r = w.a.post(
            "/v1/trajectories",
            json={"trajectory": t.model_dump(mode="json"), "build": "trajectory"},
        )
        assert r.status_code == 201, r.text
        w.pid, w.tid = r.json()["procedure"]["id"], t.id
        mem = svc.memory("a")
        mem.store.update(mem.get(w.pid).model_copy(update={"script": f"1. {SECRET}"}), reason="e")
        mem.report([w.pid], success=True)
        # a twin, so that a merge crossing namespaces would change a's data
        twin = t.model_copy(update={"id": t.id + "-twin"}).model_dump(mode="json")
        assert w.a.post(
            "/v1/trajectories", json={"trajectory": twin, "build": "trajectory"}
        ).is_success
        w.sid = a_skill_session(svc, w.pid)
        yield w
        w.a.close()
    svc.close()


def a_skill_session(svc: Service, pid: str) -> str:
    """A live skill session of tenant a (its program names the secret), counting on a's
    procedure when finished."""
    from memp.skills import ExecConfig, Priors, SkillRun
    from memp.skills.handle import LocalSkill
    from memp.skills.semantics_registry import semantics_for
    from memp.types import Program, ProgramStep

    act = f"take {SECRET} apple"
    program = Program(key=act, steps=[ProgramStep(op="act", action=act)])
    run = SkillRun(program, {}, semantics_for("alfworld"), Priors(), ExecConfig.no_llm())
    mem = svc.memory("a")
    skill = LocalSkill(
        run, task=act, procedure_ids=[pid], report=lambda ids, ok: mem.report(ids, success=ok)
    )
    return svc.sessions.open("a", "alfworld", skill)


def state_of_a(w: World) -> str:
    """Everything tenant a has, to compare before and after another tenant's attempts."""
    return json.dumps(list(w.svc.store.export_records(namespace="a")), sort_keys=True, default=str)


VOLATILE = {"created_at", "updated_at", "last_used_at", "id", "procedure_id", "replaced_at"}


def normalised(body: str, ids: dict[str, str], ns: str) -> Any:
    """A response with the ids the caller used and its namespace replaced by placeholders,
    volatile fields (timestamps, ids the server made up) dropped: two tenants asking the
    same thing of ids that exist elsewhere and of ids that exist nowhere must get the same."""
    for name, value in ids.items():
        body = body.replace(value, f"<{name}>")
    body = body.replace(f"'{ns}'", "'<ns>'").replace(f'"{ns}"', '"<ns>"')

    def drop(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: drop(v) for k, v in x.items() if k not in VOLATILE}
        if isinstance(x, list):
            return [drop(v) for v in x]
        return x

    try:
        return drop(json.loads(body))
    except ValueError:
        return [drop(json.loads(line)) for line in body.splitlines() if line.strip()]


def import_lines(w: World, ids: dict[str, str], ns: str) -> str:
    """a's export of its procedure (both versions) and trajectory, rewritten into ``ns``
    with ``ids``: what a tenant that learnt a's ids could send."""
    text = w.a.get("/v1/export").text.replace(w.pid, ids["pid"]).replace(w.tid, ids["tid"])
    out = []
    for line in text.replace(SECRET, "copied").splitlines():
        if "-twin" in line or (ids["pid"] not in line and ids["tid"] not in line):
            continue
        rec = json.loads(line)
        if rec["type"] == "trajectory":
            rec["namespace"] = ns
        else:
            rec["record"]["namespace"] = ns
        out.append(json.dumps(rec))
    assert len(out) == 3  # version 1, the procedure, its trajectory
    return "\n".join(out)


def http_probes(w: World) -> dict[tuple[str, str], Callable[..., httpx.Response]]:
    """One request per /v1 route, as a tenant that knows (or guesses) ``ids``."""

    def traj(ids: dict[str, str], task: str) -> dict[str, Any]:
        return Trajectory(
            id=ids["tid"], task=task, success=True, steps=[Step(action="go")]
        ).model_dump(mode="json")

    def outcome(ids: dict[str, str]) -> dict[str, Any]:
        o = Outcome(
            trajectory=Trajectory(id="o-" + ids["tid"], task="x", success=False), used=[ids["pid"]]
        )
        return o.model_dump(mode="json")

    P = "/v1/procedures/{procedure_id}"
    return {
        ("GET", "/v1/whoami"): lambda c, ids, ns: c.get("/v1/whoami"),
        ("GET", P): lambda c, ids, ns: c.get(f"/v1/procedures/{ids['pid']}"),
        ("GET", P + "/history"): lambda c, ids, ns: c.get(f"/v1/procedures/{ids['pid']}/history"),
        ("POST", P + "/retire"): lambda c, ids, ns: c.post(f"/v1/procedures/{ids['pid']}/retire"),
        ("POST", "/v1/report"): lambda c, ids, ns: c.post(
            "/v1/report", json={"procedure_ids": [ids["pid"]], "success": False}
        ),
        ("POST", "/v1/update"): lambda c, ids, ns: c.post(
            "/v1/update", json={"outcomes": [outcome(ids)], "strategy": "erasure"}
        ),
        ("GET", "/v1/trajectories/{trajectory_id}"): lambda c, ids, ns: c.get(
            f"/v1/trajectories/{ids['tid']}"
        ),
        ("GET", "/v1/trajectories"): lambda c, ids, ns: c.get("/v1/trajectories"),
        ("GET", "/v1/procedures"): lambda c, ids, ns: c.get(
            "/v1/procedures", params={"status": "all"}
        ),
        ("GET", "/v1/procedures/count"): lambda c, ids, ns: c.get(
            "/v1/procedures/count", params={"status": "all"}
        ),
        ("POST", "/v1/retrieve"): lambda c, ids, ns: c.post(
            "/v1/retrieve", json={"task": f"put a clean {SECRET} apple in the fridge", "k": 5}
        ),
        ("GET", "/v1/export"): lambda c, ids, ns: c.get("/v1/export"),
        # writes reusing a's ids: each makes the caller's own record or changes nothing
        ("POST", "/v1/procedures"): lambda c, ids, ns: c.post(
            "/v1/procedures",
            json={"procedure": {"id": ids["pid"], "task": "own task", "script": "1. own"}},
        ),
        ("POST", "/v1/trajectories"): lambda c, ids, ns: c.post(
            "/v1/trajectories", json={"trajectory": traj(ids, "own episode")}
        ),
        ("POST", "/v1/build"): lambda c, ids, ns: c.post(
            "/v1/build", json={"trajectory": traj(ids, "own build"), "strategy": "trajectory"}
        ),
        ("POST", "/v1/import"): lambda c, ids, ns: c.post(
            "/v1/import", content=import_lines(w, ids, ns), params={"replace": "true"}
        ),
        ("POST", "/v1/merge"): lambda c, ids, ns: c.post("/v1/merge", json={"threshold": 0.5}),
        # skills: a's session id steps and finishes nothing of a's
        ("POST", "/v1/skills"): lambda c, ids, ns: c.post(
            "/v1/skills",
            json={"task": "put a clean apple in the fridge", "environment": "alfworld"},
        ),
        ("POST", "/v1/skills/{session_id}/step"): lambda c, ids, ns: c.post(
            f"/v1/skills/{ids['sid']}/step", json={"observation": "you see an apple"}
        ),
        ("POST", "/v1/skills/{session_id}/finish"): lambda c, ids, ns: c.post(
            f"/v1/skills/{ids['sid']}/finish", json={"success": False}
        ),
    }


def test_every_http_route_acts_only_within_the_callers_namespace(world):
    """Every /v1 route (read from the app, so a new route cannot be forgotten), called by
    another tenant with a's ids, reads nothing of a's, changes nothing of a's, and answers
    exactly as for ids that exist nowhere: no existence oracle."""
    w = world
    routes = {
        (m, r.path)
        for r in w.app.routes
        if isinstance(r, APIRoute) and r.path.startswith("/v1")
        for m in r.methods
    }
    probes = http_probes(w)
    assert routes == set(probes), "a /v1 route without a tenant probe: add one here"
    before = state_of_a(w)
    foreign = {"pid": w.pid, "tid": w.tid, "sid": w.sid}
    missing = {"pid": uuid.uuid4().hex, "tid": uuid.uuid4().hex, "sid": "skill_" + uuid.uuid4().hex}
    answers: dict[str, dict[tuple[str, str], Any]] = {}
    for ns, ids in (("b1", foreign), ("b2", missing)):
        with w.client(ns) as c:
            answers[ns] = {}
            for route, probe in probes.items():
                r = probe(c, ids, ns)
                assert r.status_code < 500, (route, r.text)
                assert SECRET not in r.text, (route, r.text)  # nothing of a's is read
                assert '"a"' not in r.text and "'a'" not in r.text, (route, r.text)
                answers[ns][route] = (r.status_code, normalised(r.text, ids, ns))
    for route in probes:
        assert answers["b1"][route] == answers["b2"][route], route
    assert state_of_a(w) == before  # nothing of a's changed

    # naming a's namespace outright is refused
    with w.client("b") as b:
        foreign_proc = Procedure(task="x", namespace="a").model_dump(mode="json")
        assert b.post("/v1/procedures", json={"procedure": foreign_proc}).status_code == 403
        exported = w.a.get("/v1/export").text
        assert b.post("/v1/import", content=exported, params={"replace": "true"}).status_code == 403
    assert state_of_a(w) == before

    # every route refuses a request with no key at all
    for method, route in routes:
        path = route.replace("{procedure_id}", w.pid).replace("{trajectory_id}", w.tid)
        path = path.replace("{session_id}", w.sid)
        assert httpx.request(method, w.url + path).status_code == 401, (method, route)

    # a's own key still sees its data, and a's own merge does fold the twin
    assert w.a.get(f"/v1/procedures/{w.pid}").status_code == 200
    hits = w.a.post("/v1/retrieve", json={"task": f"put a clean {SECRET} apple in the fridge"})
    assert w.pid in [h["procedure"]["id"] for h in hits.json()["hits"]]
    assert len(w.a.post("/v1/merge", json={"threshold": 0.99}).json()["merged"]) == 1
    # and a's skill session is a's still: a finishes it, counted on a's procedure
    done = w.a.post(f"/v1/skills/{w.sid}/finish", json={"success": True})
    assert done.status_code == 200 and done.json()["outcome"] is True
    assert w.a.get(f"/v1/procedures/{w.pid}").json()["usage"]["succeeded"] == 2


def mcp_probes(w: World) -> dict[str, Callable[[dict[str, str]], dict[str, Any]]]:
    """One call per MCP tool, as a tenant that knows (or guesses) ``ids``."""
    steps = [{"action": "go", "observation": "ok"}]
    return {
        "retrieve_procedures": lambda ids: {"task": f"put a clean {SECRET} apple in the fridge"},
        "record_trajectory": lambda ids: {
            "task": "own episode",
            "steps": steps,
            "success": True,
            "used_procedure_ids": [ids["pid"]],
        },
        "report_outcome": lambda ids: {"procedure_ids": [ids["pid"]], "success": False},
        "list_procedures": lambda ids: {"status": "all"},
        "get_procedure": lambda ids: {"procedure_id": ids["pid"]},
        "retire_procedure": lambda ids: {"procedure_id": ids["pid"]},
        "skill_start": lambda ids: {
            "task": "put a clean apple in the fridge",
            "environment": "alfworld",
        },
        "skill_step": lambda ids: {"session_id": ids["sid"], "observation": "you see an apple"},
        "skill_finish": lambda ids: {"session_id": ids["sid"], "success": False},
    }


def test_every_mcp_tool_acts_only_within_the_callers_namespace(world):
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from memp.server.mcp import http_app

    w = world
    probes = mcp_probes(w)
    before = state_of_a(w)
    foreign = {"pid": w.pid, "tid": w.tid, "sid": w.sid}
    missing = {"pid": uuid.uuid4().hex, "tid": uuid.uuid4().hex, "sid": "skill_" + uuid.uuid4().hex}

    async def walk(url: str, ns: str, ids: dict[str, str]) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {w.keys[ns]}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = {t.name for t in (await session.list_tools()).tools}
            assert tools == set(probes), "an MCP tool without a tenant probe: add one here"
            out = {}
            for name, args in probes.items():
                result = await session.call_tool(name, args(ids))
                text = json.dumps(
                    [c.model_dump(mode="json") for c in result.content], sort_keys=True
                )
                assert SECRET not in text, (name, text)
                assert '"a"' not in text and "'a'" not in text, (name, text)
                out[name] = (result.is_error, normalised(text, ids, ns))
            return out

    with running(http_app(w.svc)) as url:
        b1 = anyio.run(walk, url, "b1", foreign)
        b2 = anyio.run(walk, url, "b2", missing)
    assert b1 == b2
    assert b1["get_procedure"][0] and b1["retire_procedure"][0]  # a's id is not found
    assert b1["skill_step"][0] and b1["skill_finish"][0]  # so is a's session
    assert state_of_a(w) == before


def test_revoked_keys_stop_working_and_keys_are_stored_hashed(world, tmp_path):
    svc, url = world.svc, world.url
    key, token = svc.keys.create("c")
    c = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"})
    assert c.get("/v1/whoami").json() == {"namespace": "c"}
    svc.keys.revoke(key.id)
    assert c.get("/v1/whoami").status_code == 401
    assert not svc.keys.list(namespace="c")[0].active
    assert {k.namespace for k in svc.keys.list(include_revoked=False)} == {"a", "b", "b1", "b2"}
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
