"""``memp demo`` end to end at a small size: generated games, memory, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("alfworld", reason="alfworld is part of memp[envs]")

from memp.experiment.demo import run_demo


@pytest.mark.timeout(600)
def test_demo_generates_games_builds_memory_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    # The scripted LLM keeps this about the pipeline; the real model runs in `make demo`.
    s = run_demo(out=out, games=2, train=3, model="scripted", executor="inline")
    assert len(list((tmp_path / "demo-games" / "train").rglob("game.tw-pddl"))) == 3
    assert len(list((tmp_path / "demo-games" / "valid_unseen").rglob("game.tw-pddl"))) == 2
    arms = {c["arm"]: c for c in s["conditions"]}
    assert set(arms) == {"no-memory", "procedures", "procedures-no-llm"}
    assert all(c["n"] == 2 for c in arms.values())
    assert s["environments"] == ["alfworld-like"]
    for name in ("report.md", "report.html", "report.json"):
        assert (out / name).is_file()
    assert json.loads((out / "report.json").read_text())["totals"]["eval_episodes"] == 6
    # The demo judges itself against its target, whichever way it went.
    target = s["target"]["alfworld-like"]
    assert target["compared"] and (target["met"] == bool(target["met_by"]))
    verdict = "MET by" if target["met"] else "MISSED"
    assert f"fewer steps against no memory {verdict}" in (out / "report.md").read_text()
    # A second call resumes: nothing is played again.
    again = run_demo(out=out, games=2, train=3, model="scripted", executor="inline")
    assert again["totals"]["eval_episodes"] == 6
