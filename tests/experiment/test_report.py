"""Reports: one definition of steps everywhere, the target verdict first, unique headings,
inline code in HTML, a readable success column.

A real run (TextWorldExpress, the scripted test LLM, real SQLite) gives the structure;
episodes written straight into a run database give outcomes chosen to tell the two
steps definitions apart (failures at the budget against failures where they stopped).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib.axes
import pytest

from memp.experiment import report
from memp.experiment.config import parse_config
from memp.experiment.report import render_html, render_markdown, summarize, write_report
from memp.experiment.rundb import RunDB
from memp.types import Step, Trajectory

BUDGET = 30


def config(**over: Any):
    data = {
        "name": "report",
        "description": "No memory against `skills` <k=1, 2>.",
        "models": ["scripted"],
        "embedder": "hash",
        "agent": {"max_steps": BUDGET},
        "groups": 2,
        "env": {"name": "twx", "train_split": "train", "eval_split": "test",
                "train_episodes": 4, "eval_episodes": 4, "options": {"game": "twc", "n": 12}},
        "conditions": [
            {"name": "no-memory"},
            {"name": "skills-k1", "memory": "trajectory", "mode": "executable", "use_llm": False,
             "k": 1},
            {"name": "skills-k2", "memory": "trajectory", "mode": "executable", "use_llm": False,
             "k": 2},
        ],
        "target": {"success_points": 10, "steps_cut": 10},
    }  # fmt: skip
    data.update(over)
    return parse_config(data)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("textworld_express")
    from memp.experiment.runner import run_experiment

    out = tmp_path_factory.mktemp("report") / "run"
    run_experiment(config(), out, executor="inline", progress=False)
    return out


def _plotted_steps(monkeypatch: pytest.MonkeyPatch, s: dict[str, Any]) -> dict[str, list[float]]:
    """The bar heights of every 'steps' axis the report draws, per plot title."""
    calls: list[tuple[Any, list[float]]] = []
    bar = matplotlib.axes.Axes.bar

    def spy(ax: Any, x: Any, height: Any, *a: Any, **k: Any) -> Any:
        calls.append((ax, [float(h) for h in height]))
        return bar(ax, x, height, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "bar", spy)
    report._plots(s)
    return {ax.get_title(): h for ax, h in calls if "steps" in ax.get_ylabel()}


def _headings(md: str, page: str) -> tuple[list[str], list[str]]:
    return (re.findall(r"^#+ (.*)$", md, flags=re.M),
            re.findall(r"<h[1-6]>(.*?)</h[1-6]>", page))  # fmt: skip


def test_plots_tables_and_verdict_use_the_headline_steps(
    real_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RunDB(real_run / "run.db") as db:
        s = summarize(db)
    conds = s["conditions"]
    # The scripted agent gives up before the budget: the two definitions differ here.
    assert any(c["mean_steps_played"] < c["mean_steps"] for c in conds if c["successes"] < c["n"])
    assert all(c["step_budget"] == BUDGET for c in conds)
    assert all("mean_steps_budget" not in c for c in conds)  # one steps field, not two

    plotted = _plotted_steps(monkeypatch, s)
    assert list(plotted.values()) == [[c["mean_steps"] for c in conds]]
    # The cut read off the plot is the cut of the comparison table, the best note and
    # the target verdict.
    steps = dict(zip([c["arm"] for c in conds], next(iter(plotted.values())), strict=True))
    for comp in s["comparisons"]:
        b, o = steps[comp["baseline"]], steps[comp["condition"]]
        assert comp["steps_reduction"] == round((b - o) / b, 4)

    md = (real_run / "report.md").read_text()
    head = md[md.index("| condition | mode |") :].splitlines()[0]
    assert head.count("steps") == 1 and "steps (fail=budget)" in head
    for c in conds:
        row = next(r for r in md.splitlines() if r.startswith(f"| {c['arm']} | "))
        assert f"| {c['mean_steps']:.1f} |" in row
        assert f"| {c['successes']}/{c['n']} ({100 * c['success_rate']:.0f}%, CI " in row
    # The learning curves and top-k tables use the same definition.
    rows = _eval(real_run)
    for arm, pts in s["curves"]["twx"].items():
        for p in pts:
            rs = [r for r in rows if r.arm == arm and r.group == p["group"]]
            assert p["mean_steps"] == sum(r.steps if r.success else BUDGET for r in rs) / len(rs)
    assert all(
        p["mean_steps"] == next(c for c in conds if c["arm"] == p["arm"])["mean_steps"]
        for fam in s["topk"]["twx"].values()
        for p in fam
    )


def _eval(run: Path) -> list[Any]:
    with RunDB(run / "run.db") as db:
        return db.episodes(phase="eval")


def test_verdict_first_headings_unique_no_backticks_in_html(real_run: Path) -> None:
    md = (real_run / "report.md").read_text()
    page = (real_run / "report.html").read_text()
    verdict = "twx: target +10 points of success and 10% fewer steps against no memory MISSED"

    # Markdown: the title, then the verdict, before the description and any table.
    lines = [x for x in md.splitlines() if x.strip()]
    assert lines[0] == "# report" and verdict in lines[1]
    assert md.index(verdict) < md.index("No memory against") < md.index("## ")
    assert md.count(verdict) == 1  # not repeated in the notes
    # HTML: right after the title, before every section.
    assert page.index("</h1>") < page.index(verdict) < page.index("<h2>")
    assert page.count(verdict) == 1

    for heads in _headings(md, page):
        assert len(heads) == len(set(heads)), heads
    assert "twx: learning curves" in _headings(md, page)[1]

    # Inline code renders as <code>; text is escaped; no literal backtick anywhere.
    assert "`" not in page
    assert "<code>skills</code> &lt;k=1, 2&gt;" in page
    assert f"<code>{_fingerprint(real_run)}</code>" in page
    # The success column does not wrap.
    assert "<th class='nowrap'>success (95% CI)</th>" in page
    assert re.search(r"<td class='nowrap'>\d+/4 \(\d+%, CI \d+-\d+\)</td>", page)


def _fingerprint(run: Path) -> str:
    with RunDB(run / "run.db") as db:
        return db.get_meta("fingerprint")


def _traj(ok: bool, steps: int) -> Trajectory:
    return Trajectory(task="t", steps=[Step(action="look")] * steps, success=ok)


def test_failures_count_at_the_budget_in_every_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The baseline gives up early on 3 of 4 episodes; memory wins 3 of 4 in 10 steps.
    # As played the baseline looks shorter (8.75 against 15 steps); at the budget
    # memory takes 45% fewer steps, and that is what the tables, plot and verdict say.
    cfg = config(
        groups=1,
        conditions=[{"name": "no-memory"}, {"name": "skills", "memory": "trajectory"}],
        target={"success_points": 40, "steps_cut": 40},
    )
    played = {
        "no-memory": [(False, 5)] * 3 + [(True, 20)],
        "skills": [(True, 10)] * 3 + [(False, 30)],
    }
    with RunDB(tmp_path / "run.db") as db:
        for arm, eps in played.items():
            for i, (ok, n) in enumerate(eps):
                db.add_episode(phase="eval", env="twx", arm=arm, model="scripted", split="test",
                               episode=i, group=0, seed=i, trajectory=_traj(ok, n), wall_s=1.0)  # fmt: skip
        s = write_report(db, tmp_path, config=cfg)

    by = {c["arm"]: c for c in s["conditions"]}
    assert by["no-memory"]["mean_steps_played"] == 8.75 and by["no-memory"]["mean_steps"] == 27.5
    assert by["skills"]["mean_steps_played"] == 15 and by["skills"]["mean_steps"] == 15
    assert s["comparisons"][0]["steps_reduction"] == round(12.5 / 27.5, 4)
    assert s["target"]["twx"]["met_by"] == ["skills"]
    assert list(_plotted_steps(monkeypatch, s).values()) == [[27.5, 15.0]]

    md = render_markdown(s)
    assert md.splitlines()[2].startswith("- **twx: target +40 points") and "MET by 'skills'" in md
    assert "| 1/4 (25%, CI 5-70) | 27.5 |" in md and "| 3/4 (75%, CI 30-95) | 15.0 |" in md
    assert "| skills | no-memory | +50.0 | 45.5% |" in md
    assert "45.5% fewer steps (fail=budget)" in md
    assert " 8.8 " not in md and "| 8.8 |" not in md  # the as-played mean is in no table
    page = render_html(s, figures=[])
    assert "<td class='nowrap'>1/4 (25%, CI 5-70)</td><td>27.5</td>" in page


def _written(tmp_path: Path, cfg: Any, played: dict[str, list[tuple[bool, int, str]]]):
    with RunDB(tmp_path / "run.db") as db:
        for arm, eps in played.items():
            for i, (ok, n, kind) in enumerate(eps):
                traj = _traj(ok, n)
                traj.metadata["task_type"] = kind
                db.add_episode(phase="eval", env="twx", arm=arm, model="scripted", split="test",
                               episode=i, group=0, seed=i, trajectory=traj, wall_s=1.0)  # fmt: skip
        return write_report(db, tmp_path, config=cfg)


def test_absolute_target_by_task_type_and_published_numbers(tmp_path: Path) -> None:
    published = [
        {"source": "Memp (arXiv 2508.06433), Table 1", "model": "GPT-4o",
         "condition": "no memory", "split": "test", "metrics": {"success": 42.14, "steps": 23.76}},
        {"source": "Memp (arXiv 2508.06433), Table 1", "model": "GPT-4o",
         "condition": "proceduralization", "split": "dev", "metrics": {"success": 87.14}},
    ]  # fmt: skip
    cfg = config(
        groups=1,
        conditions=[{"name": "no-memory"}, {"name": "skills", "memory": "trajectory"}],
        target={"success": 75, "mean_steps": 12, "conditions": ["skills"]},
        published=published,
    )
    # skills: 3/4 at 10 steps and one failure (30): 75% in 15 steps -> the steps goal is missed.
    played = {
        "no-memory": [(False, 5, "heat")] * 2 + [(True, 20, "cool")] + [(False, 30, "cool")],
        "skills": [(True, 10, "heat")] * 2 + [(True, 10, "cool")] + [(False, 30, "cool")],
    }
    s = _written(tmp_path / "a", cfg, played)
    t = s["target"]["twx"]
    assert (t["met"], t["judged"]) == (False, ["skills"])
    md = render_markdown(s)
    assert ("- **twx: target success >= 75% and <= 12 steps (fail=budget) for 'skills' MISSED; "
            "the best, 'skills', reaches 75.0% in 15.0 steps.**") in md  # fmt: skip
    # Per task type: wins/n and steps (fail=budget) for each arm.
    assert s["by_type"]["twx"]["cool"]["skills"] == {"n": 2, "successes": 1, "mean_steps": 20.0}
    assert "| cool | 1/2 · 25.0 | 1/2 · 20.0 |" in md and "| heat | 0/2 · 30.0 | 2/2 · 10.0 |" in md
    # Published numbers: labelled, in their own table, never in a verdict.
    assert "## published results (other systems and models, not run here)" in md
    assert ("| Memp (arXiv 2508.06433), Table 1 | GPT-4o | no memory | test | 42.14 | 23.76 |"
            in md)  # fmt: skip
    assert "| proceduralization | dev | 87.14 | - |" in md
    assert "<td>GPT-4o</td>" in render_html(s, figures=[])
    # Published numbers and targets are not what is measured: the fingerprint ignores them.
    assert (
        cfg.fingerprint()
        == config(
            groups=1, conditions=[{"name": "no-memory"}, {"name": "skills", "memory": "trajectory"}]
        ).fingerprint()
    )

    loose = cfg.model_copy(update={"target": cfg.target.model_copy(update={"mean_steps": 15})})
    s = _written(tmp_path / "b", loose, played)
    assert s["target"]["twx"]["met_by"] == ["skills"]
    assert "<= 15 steps (fail=budget) for 'skills' MET by 'skills'" in render_markdown(s)


def test_target_against_a_named_baseline_within_points_and_not_yet_played(tmp_path: Path) -> None:
    conds = [
        {"name": "no-memory"},
        {"name": "random", "memory": "trajectory", "retrieve": "random"},
        {"name": "query", "memory": "trajectory"},
        {"name": "hybrid", "memory": "trajectory", "retrieve": "hybrid"},
    ]
    played = {
        "no-memory": [(False, 30, "heat")] * 4,
        "random": [(True, 10, "heat")] + [(False, 30, "heat")] * 3,  # 25%
        "query": [(True, 10, "heat")] * 3 + [(False, 30, "heat")],  # 75%
    }
    # retrieval by similarity against retrieval at random: +30 points
    cfg = config(groups=1, conditions=conds, target={
        "baseline": "random", "success_points": 30, "conditions": ["query", "hybrid"]})  # fmt: skip
    s = _written(tmp_path / "a", cfg, played)
    t = s["target"]["twx"]
    assert (t["met_by"], t["judged"], t["planned"]) == (["query"], ["query"], ["query", "hybrid"])
    assert (
        "target +30 points of success and 0% fewer steps against 'random' for 'query', "
        "'hybrid' MET by 'query'" in render_markdown(s)
    )
    # within 5 points of the baseline, either side: query is 50 points above random
    near = cfg.model_copy(update={"target": cfg.target.model_copy(
        update={"success_points": 0.0, "within_points": 5.0})})  # fmt: skip
    s = _written(tmp_path / "b", near, played)
    assert s["target"]["twx"]["met"] is False
    assert (
        "success within 5 points of 'random' for 'query', 'hybrid' MISSED; the best, "
        "'query', reaches 75.0% in 15.0 steps ('random': 25.0%)" in render_markdown(s)
    )
    # a judged condition with no episode yet is waited for, not said to lack a baseline
    s = _written(tmp_path / "c", cfg, {"no-memory": played["no-memory"]})
    assert "not judged yet: no episode of 'query', 'hybrid' has finished" in render_markdown(s)
    # the target's conditions must exist
    with pytest.raises(ValueError, match="names condition 'nowhere', which is not one of"):
        config(groups=1, conditions=conds, target={"baseline": "nowhere", "success_points": 1})


def test_target_on_the_benchmarks_own_score(tmp_path: Path) -> None:
    cfg = config(groups=1, conditions=[{"name": "no-memory"}, {"name": "skills", "memory": "trajectory"}],
                 target={"metrics": {"score": 85}, "conditions": ["skills"]})  # fmt: skip
    scores = {"no-memory": [0, 30, 0, 10], "skills": [100, 100, 70, 90]}  # 90 on average
    with RunDB(tmp_path / "run.db") as db:
        for arm, xs in scores.items():
            for i, x in enumerate(xs):
                traj = _traj(x == 100, 10)
                traj.metadata.update(task_type="boil", metrics={"score": float(x)})
                db.add_episode(phase="eval", env="twx", arm=arm, model="scripted", split="test",
                               episode=i, group=0, seed=i, trajectory=traj, wall_s=1.0)  # fmt: skip
        s = write_report(db, tmp_path, config=cfg)
        high = cfg.model_copy(
            update={"target": cfg.target.model_copy(update={"metrics": {"score": 95}})}
        )
        (tmp_path / "b").mkdir()
        s2 = write_report(db, tmp_path / "b", config=high)
    assert s["target"]["twx"]["met_by"] == ["skills"]
    md = render_markdown(s)
    assert "target score >= 85 for 'skills' MET by 'skills'" in md
    assert "| condition | score (mean) |" in md and "| skills | 90.0 |" in md
    assert "| boil | 0/4 · 30.0 · score 10.0 | 2/4 · 20.0 · score 90.0 |" in md  # per type
    assert (
        "score >= 95 for 'skills' MISSED; the best, 'skills', reaches 50.0% in 20.0 "
        "steps, score 90.0" in render_markdown(s2)
    )


def test_llm_calls_are_averaged_over_the_episodes_that_recorded_them(tmp_path: Path) -> None:
    # a run begun before episodes recorded their LLM calls: the mean is over those that
    # did, and the table says how many
    with RunDB(tmp_path / "run.db") as db:
        for i, calls in enumerate([4, 6, None]):
            traj = _traj(False, 30)
            if calls is not None:
                traj.metadata["llm_calls"] = calls
            db.add_episode(phase="eval", env="twx", arm="no-memory", model="scripted", split="test",
                           episode=i, group=0, seed=i, trajectory=traj, wall_s=1.0)  # fmt: skip
        s = write_report(db, tmp_path, config=config(groups=1, conditions=[{"name": "no-memory"}]))
    m = next(m for m in s["conditions"] if m["arm"] == "no-memory")
    assert (m["mean_llm_calls"], m["llm_calls_recorded"]) == (5.0, 2)
    assert "| 5.0 (2 of 3 ep) |" in render_markdown(s)
