"""`memp memory ...` end to end on a real SQLite file (hashing embedder)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from memp.cli import app
from memp.types import Step, Trajectory

runner = CliRunner()


def run(*args: str, db) -> str:
    r = runner.invoke(
        app, ["memory", *args, "--db", str(db)], env={"MEMP_EMBEDDER": "hash", "COLUMNS": "250"}
    )
    assert r.exit_code == 0, r.output
    return r.output


def test_memory_cli_round_trip(tmp_path):
    db = tmp_path / "cli.db"
    trajs = [
        Trajectory(
            task="put a clean apple in fridge",
            environment="alfworld",
            success=True,
            steps=[Step(action="take apple 1"), Step(action="put apple 1 in/on fridge 1")],
        ),
        Trajectory(
            task="boil water",
            environment="scienceworld",
            success=False,
            steps=[Step(action="focus on water")],
        ),
    ]
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(t.model_dump_json() for t in trajs))
    assert "added 1 procedure(s) from 2" in run(
        "add", str(f), "--strategy", "trajectory", "--only-success", db=db
    )
    out = run("list", db=db)
    assert "put a clean apple in fridge" in out and "boil water" not in out
    block = run("search", "clean apple", "--render", db=db)
    assert "[1] Task: put a clean apple in fridge" in block and "> take apple 1" in block
    from memp.store.sqlite import SQLiteStore

    with SQLiteStore(db) as s:
        proc_id = s.list()[0].id
    shown = json.loads(run("show", proc_id, "--json", db=db))
    assert shown["task"] == "put a clean apple in fridge" and "embedding" not in shown
    assert "v1" in run("history", proc_id, db=db)
    run("export", str(tmp_path / "e.jsonl"), db=db)
    run("retire", proc_id, db=db)
    assert "put a clean" not in run("search", "clean apple", db=db)
    assert "retired" in run("list", "--status", "all", db=db)
    assert "'retired': 1" in run("stats", db=db)
    out = run("import", str(tmp_path / "e.jsonl"), db=tmp_path / "copy.db")
    assert "imported 2 record(s)" in out  # the procedure and its trajectory


def test_memory_cli_errors_are_clear(tmp_path):
    db = tmp_path / "cli.db"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "x", "steps": [{"thought": "hm"}]}\n')
    r = runner.invoke(app, ["memory", "add", str(bad), "--db", str(db), "--strategy", "trajectory"])
    assert r.exit_code == 2 and "line 1" in r.output and "steps.0.action" in r.output
    r = runner.invoke(app, ["memory", "add", str(bad), "--db", str(db), "--strategy", "plan"])
    assert r.exit_code == 2 and "valid choices: proceduralization, script, trajectory" in r.output
    r = runner.invoke(app, ["memory", "show", "nope", "--db", str(db)])
    assert r.exit_code == 2 and "no procedure 'nope'" in r.output
