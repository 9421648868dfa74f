"""The Ray executor on a local Ray instance gives the same results as the process pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from memp.experiment.config import parse_config
from memp.experiment.rundb import RunDB
from memp.experiment.runner import run_experiment

ray = pytest.importorskip("ray")
pytest.importorskip("textworld_express")


def test_ray_executor_local_instance(tmp_path: Path) -> None:
    cfg = parse_config({
        "name": "ray",
        "models": ["scripted"],
        "embedder": "hash",
        "agent": {"max_steps": 20},
        "env": {"name": "twx", "train_split": "train", "eval_split": "test", "train_episodes": 3,
                "eval_episodes": 4, "options": {"game": "twc", "n": 10}},
        "conditions": [
            {"name": "no-memory"},
            {"name": "skills", "memory": "trajectory", "mode": "executable", "use_llm": False},
        ],
    })
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        s = run_experiment(cfg, tmp_path / "ray", executor="ray", workers=2, progress=False)
    finally:
        ray.shutdown()
    with RunDB(tmp_path / "ray" / "run.db") as db:
        assert len(db.episodes(phase="collect")) == 3
        assert len(db.episodes(phase="eval")) == 8 and not db.errors()
    # The scripted ReAct policy is deterministic: the same numbers as a run in this process.
    inline = run_experiment(cfg, tmp_path / "inline", executor="inline", progress=False)
    key = ("arm", "n", "successes", "mean_steps", "prompt_tokens")
    assert [[c[k] for k in key] for c in s["conditions"] if c["arm"] == "no-memory"] == [
        [c[k] for k in key] for c in inline["conditions"] if c["arm"] == "no-memory"
    ]
    assert [c["n"] for c in s["conditions"]] == [4, 4]
