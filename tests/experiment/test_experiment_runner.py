"""The runner's logic on a real environment (TextWorldExpress) and real SQLite files.

The LLM here is the scripted test LLM (it always picks the first admissible action) and
the embedder the hashing one: these tests are about collecting, building, resuming,
updating and reporting, not about the model (see test_experiment_real.py for that).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memp.cli import app
from memp.errors import InvalidInput
from memp.experiment.config import parse_config
from memp.experiment.rundb import RunDB
from memp.experiment.runner import run_experiment

pytest.importorskip("textworld_express")


def config(**over):
    data = {
        "name": "logic",
        "models": ["scripted"],
        "embedder": "hash",
        "agent": {"max_steps": 30},
        "env": {
            "name": "twx",
            "train_split": "train",
            "eval_split": "test",
            "train_episodes": 4,
            "eval_episodes": 4,
            "options": {"game": "twc", "n": 12},
        },
        "conditions": [
            {"name": "no-memory"},
            {"name": "trajectory", "memory": "trajectory", "k": 2},
            {
                "name": "skills-no-llm",
                "memory": "trajectory",
                "mode": "executable",
                "use_llm": False,
            },
        ],
    }
    data.update(over)
    return parse_config(data)


def test_full_pipeline_report_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    s = run_experiment(config(), out, executor="inline", progress=False)
    with RunDB(out / "run.db") as db:
        collect = db.episodes(phase="collect")
        evals = db.episodes(phase="eval")
        assert len(collect) == 4 and all(r.success for r in collect)  # the expert wins
        assert len(evals) == 3 * 4
        assert {m["build"] for m in db.memories()} == {"trajectory", "skills"}
        # Same episode, same seed under every condition (paired comparison).
        seeds = {(r.episode, r.seed) for r in evals}
        assert len(seeds) == 4
        # Every trajectory is stored whole.
        t = db.trajectory(evals[0].id)
        assert t.steps and len(t.steps) == evals[0].steps
        retrieved = [
            db.trajectory(r.id).metadata.get("retrieved") for r in evals if r.arm == "trajectory"
        ]
        assert all(len(x) == 2 for x in retrieved)  # k=2 procedures each time
        first_ids = {(r.arm, r.episode): (r.id, r.finished_at) for r in evals}

    by_arm = {c["arm"]: c for c in s["conditions"]}
    assert set(by_arm) == {"no-memory", "trajectory", "skills-no-llm"}
    for c in by_arm.values():
        assert c["n"] == 4 and 0 <= c["ci_low"] <= c["success_rate"] <= c["ci_high"] <= 1
    # The skill replays the compiled expert procedure without any LLM call.
    assert by_arm["skills-no-llm"]["prompt_tokens"] == 0
    assert by_arm["no-memory"]["prompt_tokens"] > 0
    assert {c["condition"] for c in s["comparisons"]} == {"trajectory", "skills-no-llm"}

    data = json.loads((out / "report.json").read_text())
    assert data["conditions"] == json.loads(json.dumps(s["conditions"]))
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 1 and "<table>" in html
    assert "| skills-no-llm |" in (out / "report.md").read_text()

    # Re-running finds everything done: nothing is replayed, nothing duplicated.
    run_experiment(config(), out, executor="inline", progress=False)
    with RunDB(out / "run.db") as db:
        again = {(r.arm, r.episode): (r.id, r.finished_at) for r in db.episodes(phase="eval")}
    assert again == first_ids

    # A [target] judges a finished run without changing what it measured: same
    # fingerprint, nothing replayed; the report says met (and by which) or missed.
    easy = run_experiment(
        config(target={"success_points": -100, "steps_cut": -100}),
        out,
        executor="inline",
        progress=False,
    )
    assert easy["target"]["twx"]["met"]
    assert set(easy["target"]["twx"]["met_by"]) == {"trajectory", "skills-no-llm"}
    hard = run_experiment(
        config(target={"success_points": 100, "steps_cut": 100}),
        out,
        executor="inline",
        progress=False,
    )
    assert not hard["target"]["twx"]["met"] and hard["target"]["twx"]["met_by"] == []
    md = (out / "report.md").read_text()
    assert "twx: target +100 points of success and 100% fewer steps against no memory MISSED" in md
    assert f"the best, {hard['best']['twx']['condition']!r}, reaches" in md
    with RunDB(out / "run.db") as db:
        again = {(r.arm, r.episode): (r.id, r.finished_at) for r in db.episodes(phase="eval")}
    assert again == first_ids

    # A different experiment in the same directory is refused, not mixed in.
    with pytest.raises(InvalidInput, match="different experiment"):
        run_experiment(config(seed=3), out, executor="inline", progress=False)

    # Inspecting: the table, one episode's trajectory by run number and by index.
    cli = CliRunner()
    r = cli.invoke(app, ["runs", "show", str(out)])
    assert r.exit_code == 0 and "skills-no-llm" in r.output
    r = cli.invoke(app, ["runs", "show", str(out), "--episode", "2", "--condition", "trajectory"])
    assert r.exit_code == 0, r.output
    assert "task:" in r.output and ">" in r.output and ("WON" in r.output or "LOST" in r.output)
    r = cli.invoke(app, ["runs", "list", "--root", str(tmp_path)])
    assert r.exit_code == 0 and "logic" in r.output
    r = cli.invoke(app, ["runs", "show", str(out), "--episode", "999"])
    assert r.exit_code == 2 and "no episode #999" in r.output


def test_update_groups_learning_curve(tmp_path: Path) -> None:
    cfg = config(
        groups=2,
        env={
            "name": "twx",
            "train_split": "train",
            "eval_split": "test",
            "train_episodes": 2,
            "eval_episodes": 4,
            "options": {"game": "twc", "n": 12},
        },
        conditions=[
            {"name": "frozen", "memory": "trajectory", "mode": "executable", "use_llm": False},
            {
                "name": "vanilla",
                "memory": "trajectory",
                "mode": "executable",
                "use_llm": False,
                "update": "vanilla",
            },
        ],
    )
    s = run_experiment(cfg, tmp_path / "run", executor="inline", progress=False)
    with RunDB(tmp_path / "run" / "run.db") as db:
        ups = db.updates()
        assert [(u["arm"], u["group"]) for u in ups] == [
            ("vanilla", 0)
        ]  # none after the last group
        assert {r.group for r in db.episodes(arm="vanilla")} == {0, 1}
    # Group 1 of the updating arm reads its own memory copy, grown by the update.
    mem_dir = tmp_path / "run" / "memory" / "arms"
    assert (mem_dir / "twx__vanilla__g0.db").exists() and (mem_dir / "twx__vanilla__g1.db").exists()
    curve = s["curves"]["twx"]
    assert [p["n"] for p in curve["vanilla"]] == [2, 2]
    assert "learning curve of vanilla" in (tmp_path / "run" / "report.md").read_text()


def test_process_pool_matches_inline(tmp_path: Path) -> None:
    # The scripted ReAct policy is deterministic, so both executors must agree exactly.
    cfg = config(conditions=[{"name": "no-memory"}])
    a = run_experiment(cfg, tmp_path / "inline", executor="inline", progress=False)
    b = run_experiment(cfg, tmp_path / "pool", executor="local", workers=2, progress=False)
    key = ("successes", "n", "mean_steps", "prompt_tokens")
    assert [[c[k] for k in key] for c in a["conditions"]] == [
        [c[k] for k in key] for c in b["conditions"]
    ]


def test_source_without_wins_skips_its_conditions(tmp_path: Path) -> None:
    # The scripted LLM as memory source wins no training episode in 3 steps: its
    # condition is skipped with a recorded reason, the rest of the study still runs.
    cfg = config(
        agent={"max_steps": 3},
        conditions=[
            {"name": "no-memory"},
            {"name": "own", "memory": "trajectory", "source": "scripted"},
        ],
    )
    s = run_experiment(cfg, tmp_path / "run", executor="inline", progress=False)
    assert [c["arm"] for c in s["conditions"]] == ["no-memory"]
    assert any("no successful training trajectories" in e["message"] for e in s["errors"])
    with RunDB(tmp_path / "run" / "run.db") as db:
        assert len(db.episodes(phase="collect")) == 4  # the source did play


def test_won_training_episodes_are_distilled_where_they_are_played(tmp_path: Path) -> None:
    """The replay that verifies a distilled trajectory runs in the collect task (spread
    over workers); the build uses that version, the same one it would distil itself."""
    from memp.distill import distill, distilled
    from memp.envs import make_env
    from memp.memory import Memory

    cfg = config(conditions=[{"name": "trajectory", "memory": "trajectory", "k": 2}])
    out = tmp_path / "run"
    run_experiment(cfg, out, executor="inline", progress=False)
    env = make_env("twx", split="train", game="twc", n=12)
    with RunDB(out / "run.db") as db:
        raws = db.trajectories(phase="collect", env="twx", arm="expert")
        path = db.memories()[0]["path"]
    assert len(raws) == 4
    # Replayed there (True: a shortening won; False: none did, the original is kept).
    assert [r.metadata["distilled"]["metadata"]["verified"] for r in raws].count(True) >= 3
    for raw in raws:
        stored = raw.metadata["distilled"]
        again = distill(
            raw.model_copy(
                update={"metadata": {k: v for k, v in raw.metadata.items() if k != "distilled"}}
            ),
            env.semantics,
            env=env,
        )
        assert (
            distilled(raw, env.semantics).actions
            == again.actions
            == [s["action"] for s in stored["steps"]]
        )
    mem = Memory(path)
    try:
        kept = sorted(tuple(p.trajectory.actions) for p in mem.list(limit=100))
    finally:
        mem.close()
    assert kept == sorted(tuple(distilled(r, env.semantics).actions) for r in raws)


def test_an_arm_plays_only_the_env_blocks_it_names(tmp_path: Path) -> None:
    # costly arms on a subset block, cheap ones on every game: one study, one report
    twx = {
        "name": "twx",
        "train_split": "train",
        "eval_split": "test",
        "train_episodes": 4,
        "options": {"game": "twc", "n": 12},
    }
    envs = [
        {**twx, "label": "subset", "eval_episodes": 2},
        {**twx, "label": "all", "eval_episodes": 4},
    ]
    cfg = config(
        env=envs,
        conditions=[
            {"name": "no-memory", "envs": ["subset"]},
            {
                "name": "skills-no-llm",
                "memory": "trajectory",
                "mode": "executable",
                "use_llm": False,
            },
        ],
    )
    s = run_experiment(cfg, tmp_path / "run", executor="inline", progress=False)
    with RunDB(tmp_path / "run" / "run.db") as db:
        played = {(r.env, r.arm) for r in db.episodes(phase="eval")}
        # every LLM call of an episode is counted: the ReAct agent calls once a step
        calls = {
            (r.arm, db.trajectory(r.id).metadata["llm_calls"], r.steps)
            for r in db.episodes(phase="eval")
        }
        assert all(c == (n if arm == "no-memory" else 0) for arm, c, n in calls), calls
        counts = {k: sum((r.env, r.arm) == k for r in db.episodes(phase="eval")) for k in played}
    assert counts == {
        ("subset", "no-memory"): 2,
        ("subset", "skills-no-llm"): 2,
        ("all", "skills-no-llm"): 4,
    }
    assert s["totals"]["planned_eval_episodes"] == 8 == s["totals"]["eval_episodes"]
    by = {(m["env"], m["arm"]): m for m in s["conditions"]}
    assert by[("all", "skills-no-llm")]["mean_llm_calls"] == 0
    assert (
        by[("subset", "no-memory")]["mean_llm_calls"]
        == by[("subset", "no-memory")]["mean_steps_played"]
    )
    with pytest.raises(
        ValueError,
        match="envs 'nowhere' name no \\[\\[env\\]\\] block; valid labels: 'subset', 'all'",
    ):
        config(env=envs, conditions=[{"name": "no-memory", "envs": ["nowhere"]}])
    # every block named is every block: the same measurement, the same fingerprint
    a = config(env=envs, conditions=[{"name": "no-memory", "envs": []}])
    b = config(env=envs, conditions=[{"name": "no-memory", "envs": ["subset"]}])
    assert a.fingerprint() == config(env=envs, conditions=[{"name": "no-memory"}]).fingerprint()
    assert a.fingerprint() != b.fingerprint()


def test_an_arm_can_read_memory_built_on_another_block(tmp_path: Path) -> None:
    # memory built on one game source and used on another: here two blocks of one game
    # whose training sets differ in size
    twx = {
        "name": "twx",
        "train_split": "train",
        "eval_split": "test",
        "eval_episodes": 2,
        "options": {"game": "twc", "n": 12},
    }
    envs = [
        {**twx, "label": "big", "train_episodes": 4},
        {**twx, "label": "small", "train_episodes": 2},
    ]
    cfg = config(
        env=envs,
        conditions=[
            {"name": "no-memory", "envs": ["small"]},
            {"name": "own", "memory": "trajectory", "envs": ["small"]},
            {"name": "from-big", "memory": "trajectory", "envs": ["small"], "memory_from": "big"},
        ],
    )
    run_experiment(cfg, tmp_path / "run", executor="inline", progress=False)
    with RunDB(tmp_path / "run" / "run.db") as db:
        mems = {m["env"]: m["procedures"] for m in db.memories()}
        assert mems == {"big": 4, "small": 2}
        played = {(r.env, r.arm) for r in db.episodes(phase="eval")}
        assert played == {("small", "no-memory"), ("small", "own"), ("small", "from-big")}
        assert len(db.episodes(phase="collect", env="big")) == 4  # played for from-big only
        paths = {m["env"]: m["path"] for m in db.memories()}
        used = {arm: {i for r in db.episodes(phase="eval", arm=arm)
                      for i in db.trajectory(r.id).metadata.get("retrieved") or []}
                for arm in ("own", "from-big")}  # fmt: skip
    import sqlite3

    def ids(path: str) -> set[str]:
        with sqlite3.connect(path) as con:
            return {i for (i,) in con.execute("SELECT id FROM procedures")}

    assert used["from-big"] and used["from-big"] <= ids(paths["big"])
    assert used["own"] and used["own"] <= ids(paths["small"])
    with pytest.raises(ValueError, match="memory_from 'nowhere' names no"):
        config(
            env=envs, conditions=[{"name": "x", "memory": "trajectory", "memory_from": "nowhere"}]
        )
    with pytest.raises(ValueError, match="memory_from needs a memory kept as built"):
        config(env=envs, conditions=[{"name": "x", "memory_from": "big"}])
