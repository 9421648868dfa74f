"""Skills for remote agents: the agent owns its environment (generated ALFWorld-like games
stepped here), the memory service (a real uvicorn server on loopback, the real SQLite
store) supplies the actions over HTTP, through :class:`memp.Client` and through MCP;
the outcome is counted on the procedure in the store. Also the CLI's ``memp skill``."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from memp.cli import app
from memp.client import Client, RemoteSkill
from memp.distill import expert_trajectory
from memp.embed import make_embedder
from memp.envs import env_names
from memp.errors import InvalidInput, NotFound
from memp.memory import Memory
from memp.server.http import Service, create_app, running
from memp.server.sessions import SkillSessions
from memp.skills.handle import LocalSkill, Skill
from memp.skills.semantics_registry import semantics_for, semantics_names
from memp.template import align
from memp.types import Program, Trajectory
from skill_games import games_dir

# the games test_memory_executable.py plays (generated once, cached): split -> (games, limit)
SPLITS = {"train": (9, 200), "valid_unseen": (6, 50)}
MAX_BODY = 256 * 1024


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Executable memory built on the training games into a SQLite file; the held-out
    games the agent plays; a service over that file with a key of namespace 'team'."""
    from memp.envs.alfworld import AlfworldEnv

    envs = {
        s: AlfworldEnv(s, data_dir=games_dir(s, n), max_steps=m) for s, (n, m) in SPLITS.items()
    }
    train, held = envs["train"], envs["valid_unseen"]
    db = str(tmp_path_factory.mktemp("remote") / "memp.db")
    with Memory(db, embedder=make_embedder("hash"), namespace="team") as memory:
        procs = [
            memory.add(expert_trajectory(train, i), strategy="executable", env=train)
            for i in range(len(train))
        ]
        keys = {p.task_key for p in procs}
        tasks = [held.reset(episode=i)[1]["task"] for i in range(len(held))]
        covered = [i for i, t in enumerate(tasks) if any(align(t, k) for k in keys)]
        # the episodes the skill wins when stepped in this process (nothing counted)
        won = []
        for i in covered:
            local = memory.skill(tasks[i], env=held, track=False)
            if local is not None and local.run(held, i, report=False).success:
                won.append(i)
    assert won, "the local skill wins no held-out game: nothing to compare the remote one with"
    svc = Service(db, embedder="hash", llm="none")
    _, key = svc.keys.create("team")
    _, other = svc.keys.create("others")
    with running(create_app(db, service=svc, max_body=MAX_BODY)) as url:
        yield dict(
            db=db,
            train=train,
            held=held,
            tasks=tasks,
            won=won,
            url=url,
            key=key,
            other=other,
            svc=svc,
            data=games_dir("valid_unseen", 6),
        )
    svc.close()
    for env in envs.values():
        env.close()


def usage(db: str, pid: str) -> tuple[int, int, int]:
    with Memory(db, embedder=make_embedder("hash"), namespace="team") as m:
        u = m.get(pid).usage
    return u.retrieved, u.succeeded, u.failed


def local_actions(world, episode: int) -> tuple[Program, dict[str, str], list[str]]:
    held = world["held"]
    with Memory(world["db"], embedder=make_embedder("hash"), namespace="team") as m:
        skill = m.skill(world["tasks"][episode], env=held, track=False)
        assert isinstance(skill, LocalSkill)
        traj = skill.run(held, episode, report=False)
    return skill.program, skill.binding, [str(s.action) for s in traj.steps]


def test_semantics_registry_covers_every_environment():
    assert semantics_names() == env_names()
    from memp.envs.alfworld import AlfworldSemantics
    from memp.envs.textworld import TextWorldEnv

    assert isinstance(semantics_for("alfworld"), AlfworldSemantics)
    assert semantics_for("textworld") is TextWorldEnv.semantics
    with pytest.raises(InvalidInput, match="unknown environment 'nowhere'; valid choices: "):
        semantics_for("nowhere")


def test_client_skill_plays_a_whole_episode_remotely_and_counts_it(world):
    """The agent loop steps its own environment; each action comes from the server."""
    held, i = world["held"], world["won"][0]
    program, binding, expected = local_actions(world, i)
    obs, info = held.reset(episode=i)
    with Client(world["url"], api_key=world["key"]) as client:
        skill = client.skill(info["task"], env=held)
        assert isinstance(skill, RemoteSkill) and isinstance(skill, Skill)
        pid = skill.procedure_id
        before = usage(world["db"], pid)  # retrieved already counted by skill()
        assert skill.program == program and skill.binding == binding
        assert skill.session_id.startswith("skill_") and skill.environment == "alfworld"
        actions, won = [], False
        while not won:
            action = skill.next_action(obs, info["admissible"])
            if action is None:
                break
            assert action in info["admissible"]
            actions.append(action)
            obs, _, terminated, truncated, info = held.step(action)
            won = bool(info["won"])
            if terminated or truncated:
                break
        assert won, (actions, skill.stopped)
        assert actions == expected  # the same actions the skill takes in this process
        assert skill.steps_taken == len(actions)
        skill.finish(True)
        assert skill.outcome is True
        r, ok, fail = usage(world["db"], pid)
        assert (r, ok, fail) == (before[0], before[1] + 1, before[2])
        with pytest.raises(InvalidInput, match="already reported"):
            skill.finish(True)
        # the session is over on the server too
        with pytest.raises(NotFound, match="no skill session"):
            client._call("POST", f"/v1/skills/{skill.session_id}/step", json={"observation": "x"})


def test_remote_skill_run_counts_retrieval_and_outcome(world):
    held, i = world["held"], world["won"][-1]
    with Client(world["url"], api_key=world["key"]) as client:
        skill = client.skill(world["tasks"][i], environment="alfworld")
        assert skill is not None
        before = usage(world["db"], skill.procedure_id)
        traj = skill.run(held, i)
        assert isinstance(traj, Trajectory) and traj.success
        assert traj.metadata["retrieved"] == skill.procedure_ids
        after = usage(world["db"], skill.procedure_id)
        assert after == (before[0], before[1] + 1, before[2])
        with pytest.raises(InvalidInput, match="already played"):
            skill.run(held, i)
        # track=True counts the procedures as retrieved when the skill is handed out
        again = client.skill(world["tasks"][i], environment="alfworld")
        assert usage(world["db"], again.procedure_id)[0] == after[0] + 1
        again.finish(False)
        assert usage(world["db"], again.procedure_id)[2] == after[2] + 1


def test_no_matching_template_is_none_remotely_and_404_raw(world):
    with Client(world["url"], api_key=world["key"]) as client:
        assert client.skill("launch the rocket to the moon", environment="alfworld") is None
        with pytest.raises(InvalidInput, match="needs the environment"):
            client.skill("put a mug in desk")
    r = httpx.post(
        f"{world['url']}/v1/skills",
        json={"task": "launch the rocket to the moon", "environment": "alfworld"},
        headers={"authorization": f"Bearer {world['key']}"},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_skill"
    assert "--strategy executable --env alfworld" in r.json()["error"]["message"]


def test_raw_http_session_with_done_flags(world):
    """What a non-Python agent does: first observation with the start, steps, won flag."""
    held, i = world["held"], world["won"][0]
    auth = {"authorization": f"Bearer {world['key']}"}
    obs, info = held.reset(episode=i)
    with httpx.Client(base_url=world["url"], headers=auth, timeout=60) as http:
        r = http.post(
            "/v1/skills",
            json={
                "task": info["task"],
                "environment": "alfworld",
                "observation": obs,
                "admissible": info["admissible"],
                "config": {"max_steps": 40},
            },
        )
        assert r.status_code == 201, r.text
        started = r.json()
        sid, pid = started["session_id"], started["procedure_id"]
        program = Program.model_validate(started["program"])
        assert set(started["binding"]) == set(program.slots) and program.steps
        before = usage(world["db"], pid)
        action = started["action"]
        while action is not None:
            obs, _, terminated, truncated, info = held.step(action)
            body = {"observation": obs, "admissible": info["admissible"]}
            if info["won"] or terminated or truncated:
                body |= {"done": True, "won": bool(info["won"])}
            state = http.post(f"/v1/skills/{sid}/step", json=body).json()
            action = state["action"]
        assert state["outcome"] is True and info["won"]
        assert usage(world["db"], pid) == (before[0], before[1] + 1, before[2])
        gone = http.post(f"/v1/skills/{sid}/finish", json={"success": True})
        assert gone.status_code == 404 and "no skill session" in gone.json()["error"]["message"]


def test_bad_requests_get_clear_4xx(world):
    task = world["tasks"][world["won"][0]]
    auth = {"authorization": f"Bearer {world['key']}"}
    with httpx.Client(base_url=world["url"], headers=auth, timeout=60) as http:

        def error(r, status):
            assert r.status_code == status, r.text
            return r.json()["error"]

        e = error(http.post("/v1/skills", json={"task": task, "environment": "nowhere"}), 422)
        assert e["code"] == "unknown_option" and "alfworld" in e["details"]["valid"]
        e = error(
            http.post(
                "/v1/skills",
                json={"task": task, "environment": "alfworld", "config": {"max_stepz": 3}},
            ),
            422,
        )
        assert e["code"] == "unknown_field" and "max_stepz" in e["message"]
        e = error(
            http.post(
                "/v1/skills",
                json={"task": task, "environment": "alfworld", "config": {"max_steps": "many"}},
            ),
            422,
        )
        assert "max_steps" in e["message"]
        e = error(http.post("/v1/skills", json={"task": "", "environment": "alfworld"}), 422)
        assert e["code"] == "invalid_request"
        e = error(http.post("/v1/skills/skill_nope/step", json={"observation": "hi"}), 404)
        assert "no skill session 'skill_nope'" in e["message"] and "start a new one" in e["message"]
        e = error(http.post("/v1/skills/skill_nope/finish", json={"success": True}), 404)
        sid = http.post("/v1/skills", json={"task": task, "environment": "alfworld"}).json()[
            "session_id"
        ]
        big = {"observation": "x" * (MAX_BODY + 1)}
        assert error(http.post(f"/v1/skills/{sid}/step", json=big), 413)["code"] == (
            "payload_too_large"
        )
        long = {"observation": "x" * 70_000}  # under the body limit, over one observation's
        assert error(http.post(f"/v1/skills/{sid}/step", json=long), 422)["code"] == (
            "invalid_request"
        )
        # another tenant cannot see, step or finish this session
        theirs = {"authorization": f"Bearer {world['other']}"}
        r = http.post(f"/v1/skills/{sid}/finish", json={"success": True}, headers=theirs)
        assert error(r, 404)["code"] == "not_found"
        r = httpx.post(f"{world['url']}/v1/skills", json={"task": task, "environment": "alfworld"})
        assert error(r, 401)["code"] == "unauthorized"
        # the session is still ours and finishes normally
        assert http.post(f"/v1/skills/{sid}/finish", json={"success": False}).status_code == 200


def test_session_cap_and_idle_timeout(world):
    """A separate service with two session slots and a short idle timeout."""
    svc = Service(
        world["db"],
        embedder="hash",
        llm="none",
        sessions=SkillSessions(max_sessions=2, idle_timeout=1.0),
    )
    _, key = svc.keys.create("team")
    task = world["tasks"][world["won"][0]]
    body = {"task": task, "environment": "alfworld", "track": False}
    try:
        with (
            running(create_app(world["db"], service=svc)) as url,
            httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}) as http,
        ):
            first = http.post("/v1/skills", json=body).json()["session_id"]
            http.post("/v1/skills", json=body).raise_for_status()
            full = http.post("/v1/skills", json=body)
            assert full.status_code == 429 and full.json()["error"]["code"] == "too_many_sessions"
            assert "finish the ones you are done with" in full.json()["error"]["message"]
            # finishing one frees its slot
            assert http.post(f"/v1/skills/{first}/finish", json={"success": False}).is_success
            third = http.post("/v1/skills", json=body)
            assert third.status_code == 201
            time.sleep(1.3)  # every session idles out
            assert len(svc.sessions) == 0
            r = http.post(
                f"/v1/skills/{third.json()['session_id']}/step", json={"observation": "x"}
            )
            assert r.status_code == 404 and "idle longer than 1 s" in r.json()["error"]["message"]
    finally:
        svc.close()


def test_mcp_tools_play_an_episode(world):
    """The same through the real MCP server over streamable HTTP (as an MCP agent would)."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from memp.server.mcp import http_app

    held, i = world["held"], world["won"][0]
    _, _, expected = local_actions(world, i)
    svc = Service(world["db"], embedder="hash", llm="none")
    _, key = svc.keys.create("team")

    async def call(session, tool, **args):
        result = await session.call_tool(tool, args)
        assert not result.is_error, result.content
        return result.structured_content

    async def agent(url: str) -> tuple[str, list[str], bool]:
        async with (
            httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60) as http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            obs, info = held.reset(episode=i)
            bad = await session.call_tool(
                "skill_start", {"task": info["task"], "environment": "nowhere"}
            )
            assert bad.is_error and "valid choices" in bad.content[0].text
            none = await session.call_tool(
                "skill_start", {"task": "launch the rocket", "environment": "alfworld"}
            )
            assert none.is_error and "--strategy executable" in none.content[0].text
            lost = await session.call_tool("skill_step", {"session_id": "x", "observation": "o"})
            assert lost.is_error and "no skill session" in lost.content[0].text
            started = await call(
                session,
                "skill_start",
                task=info["task"],
                environment="alfworld",
                observation=obs,
                admissible=info["admissible"],
            )
            sid, action, actions = started["session_id"], started["action"], []
            assert Program.model_validate(started["program"]).key
            while action is not None:
                actions.append(action)
                obs, _, terminated, truncated, info = held.step(action)
                if info["won"] or terminated or truncated:
                    break
                state = await call(
                    session,
                    "skill_step",
                    session_id=sid,
                    observation=obs,
                    admissible=info["admissible"],
                )
                action = state["action"]
            done = await call(session, "skill_finish", session_id=sid, success=bool(info["won"]))
            assert done["outcome"] is bool(info["won"])
            return started["procedure_id"], actions, bool(info["won"])

    before = {p.id: p.usage for p in svc.store.list(namespace="team")}
    try:
        with running(http_app(svc)) as url:
            pid, actions, won = anyio.run(agent, url)
    finally:
        svc.close()
    assert won and actions == expected
    old = before[pid]
    assert usage(world["db"], pid) == (old.retrieved + 1, old.succeeded + 1, old.failed)


def test_cli_skill_show_and_run(world):
    runner = CliRunner()
    i = world["won"][0]
    task = world["tasks"][i]
    common = ["--db", world["db"], "--namespace", "team", "--embedder", "hash"]
    shown = runner.invoke(app, ["skill", "show", task, "--env", "alfworld", "--json", *common])
    assert shown.exit_code == 0, shown.output
    import json

    data = json.loads(shown.output)
    program = Program.model_validate(data["program"])
    assert set(data["binding"]) == set(program.slots) and data["procedure_id"]
    before = usage(world["db"], data["procedure_id"])
    text = runner.invoke(app, ["skill", "show", task, "--env", "alfworld", *common])
    assert text.exit_code == 0 and program.key in text.output
    assert usage(world["db"], data["procedure_id"]) == before  # show counts nothing
    ran = runner.invoke(
        app,
        [
            "skill",
            "run",
            task,
            "--env",
            "alfworld",
            "--split",
            "valid_unseen",
            "--opt",
            f"data_dir={world['data']}",
            "--opt",
            "max_steps=50",
            *common,
        ],
    )
    assert ran.exit_code == 0, ran.output
    assert "won" in ran.output and f"episode {i}" in ran.output
    assert usage(world["db"], data["procedure_id"]) == (before[0] + 1, before[1] + 1, before[2])
    # a task no template matches: one line saying what to do
    miss = runner.invoke(app, ["skill", "show", "launch the rocket", "--env", "alfworld", *common])
    assert miss.exit_code == 2
    assert miss.output.startswith("error: no executable procedure")
    assert "memp memory add --strategy executable --env alfworld" in miss.output
    bad = runner.invoke(app, ["skill", "show", task, "--env", "nowhere", *common])
    assert bad.exit_code == 2 and "unknown environment 'nowhere'" in bad.output
