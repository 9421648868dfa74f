"""`memp collect`: policies run on real environments, trajectories land in the store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memp.agent import ReActAgent
from memp.cli import app
from memp.envs import make_env
from memp.memory import Memory
from memp.policies import ExpertPolicy, collect, parse_env_options
from memp.store.sqlite import SQLiteStore

FIXTURE = Path(__file__).parent / "envs" / "fixtures" / "travelplanner"
runner = CliRunner()


def test_collect_expert_twx_stores_trajectories(tmp_path: Path) -> None:
    db, out = tmp_path / "m.db", tmp_path / "t.jsonl"
    res = runner.invoke(app, [
        "collect", "--env", "twx", "--split", "train", "--policy", "expert", "--n", "2",
        "--db", str(db), "--opt", "game=cookingworld", "--opt", "params=numLocations=1", "--out", str(out),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "won 2/2" in res.output
    store = SQLiteStore(db)
    trajs = store.list_trajectories(namespace="default")
    store.close()
    assert len(trajs) == 2
    assert {t.metadata["episode"] for t in trajs} == {0, 1}
    assert all(t.success and t.environment == "twx" and t.steps[0].actor == "expert" for t in trajs)
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["environment"] == "twx"


def test_collect_travelplanner_from_flags(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    res = runner.invoke(app, [
        "collect", "--env", "travelplanner", "--n", "5", "--db", str(db),
        "--db-dir", str(FIXTURE / "database"), "--queries", str(FIXTURE / "queries"),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "won 2/2" in res.output  # n is capped at the split's size


def test_collect_errors_are_clear(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    res = runner.invoke(app, ["collect", "--env", "webshop", "--db", db])
    assert res.exit_code == 2 and "valid choices" in res.output
    res = runner.invoke(app, ["collect", "--env", "twx", "--policy", "random", "--db", db])
    assert res.exit_code == 2 and "expert" in res.output
    missing = str(tmp_path / "no-such-database")
    res = runner.invoke(app, ["collect", "--env", "travelplanner", "--db", db,
                              "--opt", f"db_dir={missing}"])  # fmt: skip
    assert res.exit_code == 2 and "TravelPlanner data is missing" in res.output
    assert missing in res.output


def test_parse_env_options() -> None:
    assert parse_env_options(["game=twc", "n=5", "x=0.5", "flag=true"]) == {"game": "twc", "n": 5, "x": 0.5, "flag": True}


def test_collect_with_the_local_model_records_llm_steps(tmp_path: Path, local_llm) -> None:
    env = make_env("twx", "train", game="twc", params="numLocations=1,numItemsToPutAway=1")
    mem = Memory(tmp_path / "m.db")
    try:
        got = collect(env, ReActAgent(local_llm, max_steps=2), [0], memory=mem)
        expert = collect(env, ExpertPolicy(), [0], memory=mem)
    finally:
        env.close()
    stored = {t.id: t for t in mem.store.list_trajectories(namespace="default")}
    mem.close()
    assert set(stored) == {got[0].id, expert[0].id}
    llm_traj = stored[got[0].id]
    assert llm_traj.steps and all(s.actor == "llm" and s.info["valid"] for s in llm_traj.steps)
    assert llm_traj.prompt_tokens == sum(s.prompt_tokens for s in llm_traj.steps) > 0
    assert stored[expert[0].id].success is True


def test_collected_episodes_become_executable_procedures_from_the_cli(tmp_path: Path) -> None:
    db, out = tmp_path / "m.db", tmp_path / "t.jsonl"
    opts = ["--opt", "game=twc", "--opt", "n=12"]
    res = runner.invoke(app, ["collect", "--env", "twx", "--split", "train", "--policy", "expert",
                              "--episodes", "3", "--db", str(db), *opts, "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    # The executable build needs the environment's grammar: one clear line without it.
    res = runner.invoke(app, ["memory", "add", str(out), "--strategy", "executable", "--db", str(db)])
    assert res.exit_code == 2 and "pass --env NAME" in res.output
    res = runner.invoke(app, ["memory", "add", str(out), "--strategy", "executable", "--db", str(db),
                              "--embedder", "hash", "--env", "twx", *opts])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "added 3 procedure(s)" in res.output
    mem = Memory(str(db))
    try:
        procs = mem.list(limit=10)
    finally:
        mem.close()
    assert len(procs) == 3 and all(p.build == "executable" and p.program for p in procs)
    assert all(p.program.steps and p.task_key for p in procs)
