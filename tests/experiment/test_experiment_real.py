"""A small real run end to end: the local LLM and embedder, a real environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from memp.experiment.config import parse_config
from memp.experiment.rundb import RunDB
from memp.experiment.runner import run_experiment
from memp.experiment.worker import process_context

pytest.importorskip("textworld_express")


@pytest.mark.slow
def test_small_real_run(tmp_path: Path, local_llm, local_embedder) -> None:
    cfg = parse_config({
        "name": "real-small",
        "models": ["local"],
        "embedder": "local",
        "agent": {"max_steps": 2},
        "env": {"name": "twx", "train_split": "train", "eval_split": "test", "train_episodes": 2,
                "eval_episodes": 2, "options": {"game": "twc", "n": 10}},
        "conditions": [
            {"name": "no-memory"},
            {"name": "skills", "memory": "trajectory", "mode": "executable"},
        ],
    })
    # In-process run sharing the session's loaded model (the process pool would load its own).
    process_context().provide(llm=("local", local_llm), embedder=("local", local_embedder))
    s = run_experiment(cfg, tmp_path / "run", executor="inline", progress=False)

    with RunDB(tmp_path / "run" / "run.db") as db:
        rows = db.episodes(phase="eval")
        assert sorted((r.arm, r.episode) for r in rows) == [
            ("no-memory", 0), ("no-memory", 1), ("skills", 0), ("skills", 1)]
        for r in rows:
            t = db.trajectory(r.id)
            assert 1 <= len(t.steps) <= 2 and t.task
            if r.arm == "no-memory":
                # Every action came from the model, under the admissible-action grammar.
                assert all(s.actor == "llm" for s in t.steps)
                assert t.prompt_tokens > 0 and t.model and t.model.startswith("local")
                assert not any("Unknown action" in s.observation for s in t.steps)
            else:
                assert t.metadata.get("retrieved"), "the skill condition used stored procedures"
        mem = db.memories()
        assert len(mem) == 1 and mem[0]["build"] == "skills" and mem[0]["procedures"] >= 1
    by_arm = {c["arm"]: c for c in s["conditions"]}
    assert by_arm["no-memory"]["n"] == 2 and by_arm["no-memory"]["mean_prompt_tokens"] > 0
    assert (tmp_path / "run" / "report.html").stat().st_size > 5000
