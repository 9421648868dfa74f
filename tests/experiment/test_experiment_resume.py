"""Resumption: kill the runner mid-run, run the same command again, nothing is lost or redone."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memp.experiment.report import write_report
from memp.experiment.rundb import RunDB

pytest.importorskip("textworld_express")

EVAL = 40
TOML = f"""
name = "resume"
models = ["scripted"]
embedder = "hash"
[agent]
max_steps = 30
[[env]]
name = "twx"
train_split = "train"
eval_split = "test"
train_episodes = 3
eval_episodes = {EVAL}
options = {{ game = "twc", n = 50 }}
[[conditions]]
name = "no-memory"
[[conditions]]
name = "skills"
memory = "trajectory"
mode = "executable"
use_llm = false
"""


def _eval_rows(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            return db.execute("SELECT count(*) FROM episodes WHERE phase='eval'").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_killed_run_resumes(tmp_path: Path) -> None:
    exp = tmp_path / "resume.toml"
    exp.write_text(TOML)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "memp", "run", str(exp), "--out", str(out), "--workers", "1",
           "--no-progress"]
    # Its own session, so the kill takes the worker processes down with the runner.
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    db_path = out / "run.db"
    deadline = time.monotonic() + 240
    while _eval_rows(db_path) < 3:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    with RunDB(db_path) as db:
        before = {(r.arm, r.episode): (r.id, r.finished_at) for r in db.episodes(phase="eval")}
        collected = {r.id for r in db.episodes(phase="collect")}
    assert 3 <= len(before) < 2 * EVAL, "the kill must land mid-run"
    assert not (out / "report.json").exists()
    # The interrupted run's report says that it is partial.
    with RunDB(db_path) as db:
        write_report(db, out)
    assert f"Incomplete run: {len(before)} of {2 * EVAL} planned" in (out / "report.md").read_text()

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    with RunDB(db_path) as db:
        rows = db.episodes(phase="eval")
        after = {(r.arm, r.episode): (r.id, r.finished_at) for r in rows}
        assert {r.id for r in db.episodes(phase="collect")} == collected  # not re-collected
        assert len(db.memories()) == 1 and not db.errors()
    # Every episode exactly once; the ones finished before the kill were not replayed.
    assert len(rows) == 2 * EVAL and len(after) == 2 * EVAL
    assert {k: after[k] for k in before} == before
    assert sorted(e for a, e in after if a == "skills") == list(range(EVAL))
    assert (out / "report.json").exists()
    assert "Incomplete run" not in (out / "report.md").read_text()


def test_interrupted_prompt_memory_build_resumes_where_it_stopped(tmp_path: Path) -> None:
    # a script-memory build costs an LLM call per trajectory: one cut short keeps what it
    # stored and builds only the rest when the run is started again
    from memp.experiment.config import parse_config
    from memp.experiment.runner import run_experiment
    from memp.memory import Memory

    cfg = parse_config(
        {
            "name": "build-resume",
            "models": ["scripted"],
            "embedder": "hash",
            "agent": {"max_steps": 30},
            "env": {"name": "twx", "train_split": "train", "eval_split": "test",
                    "train_episodes": 4, "eval_episodes": 1, "options": {"game": "twc", "n": 8}},
            "conditions": [{"name": "no-memory"},
                           {"name": "script", "memory": "script", "mode": "prompt"}],
        }
    )
    out = tmp_path / "run"
    run_experiment(cfg, out, executor="inline", progress=False)
    with RunDB(out / "run.db") as db:
        (rec,) = db.memories()
        path = Path(rec["path"])
        first_tokens = rec["prompt_tokens"]
    mem = Memory(path)
    procs = mem.list(status=None)
    assert len(procs) == 4 and first_tokens > 0
    mem.close()
    # the build "was killed" after storing the last trajectory but not its procedure,
    # before the run recorded the memory
    with sqlite3.connect(path) as c:
        c.execute("DELETE FROM vectors WHERE procedure_id = ?", (procs[-1].id,))
        c.execute("DELETE FROM procedures WHERE id = ?", (procs[-1].id,))
    with sqlite3.connect(out / "run.db") as c:
        c.execute("DELETE FROM memories")
    run_experiment(cfg, out, executor="inline", progress=False)
    with RunDB(out / "run.db") as db:
        (rec,) = db.memories()
    mem = Memory(path)
    again = mem.list(status=None)
    mem.close()
    assert len(again) == 4  # the missing one built, none twice
    assert {p.source_trajectory_id for p in again} >= {p.source_trajectory_id for p in procs[:3]}
    assert 0 < rec["prompt_tokens"] < first_tokens  # one LLM build, not four
