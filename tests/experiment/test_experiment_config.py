"""Experiment configs: TOML, overrides, validation errors, and the metrics' statistics."""

from __future__ import annotations

from pathlib import Path

import pytest

from memp.errors import InvalidInput
from memp.experiment.config import apply_overrides, load_config, parse_config
from memp.experiment.metrics import wilson_interval
from memp.experiment.runner import split_groups

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "name": "x",
    "env": {"name": "twx", "train_episodes": 3, "eval_episodes": 4},
    "conditions": [{"name": "none"}, {"name": "traj", "memory": "trajectory"}],
}


@pytest.mark.parametrize(
    "path", sorted((ROOT / "experiments").glob("*.toml")), ids=lambda p: p.name
)
def test_builtin_studies_load(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.arms(), path
    assert any(c.memory == "none" for c in cfg.conditions)  # every study has its baseline


def test_unknown_key_is_a_clear_error() -> None:
    bad = {**BASE, "conditions": [{"name": "a", "memroy": "script"}]}
    with pytest.raises(InvalidInput) as e:
        parse_config(bad)
    msg = str(e.value)
    assert "unknown key 'conditions.0.memroy'" in msg and "condition keys:" in msg


def test_bad_choice_and_inconsistent_condition() -> None:
    with pytest.raises(InvalidInput, match="memory"):
        parse_config({**BASE, "conditions": [{"name": "a", "memory": "scripts"}]})
    with pytest.raises(InvalidInput, match="compiled from trajectories"):
        parse_config(
            {**BASE, "conditions": [{"name": "a", "memory": "script", "mode": "executable"}]}
        )
    with pytest.raises(InvalidInput, match="duplicate condition"):
        parse_config({**BASE, "conditions": [{"name": "a"}, {"name": "a"}]})


def test_overrides_defaults_and_arms() -> None:
    data = {**BASE, "condition_defaults": {"k": 5}, "models": ["m1", "m2"]}
    data = apply_overrides(
        data, ["seed=7", "env.*.eval_episodes=[1, 3]", "conditions.traj.k=2", "agent.max_steps=9"]
    )
    cfg = parse_config(data)
    assert cfg.seed == 7 and cfg.agent.max_steps == 9
    assert cfg.env[0].eval_indices() == [1, 3]
    assert [c.k for c in cfg.conditions] == [5, 2]
    assert [a.label for a in cfg.arms()] == ["none@m1", "none@m2", "traj@m1", "traj@m2"]
    with pytest.raises(InvalidInput, match="no conditions entry named"):
        apply_overrides(BASE, ["conditions.nope.k=2"])
    # Execution settings do not change what is measured.
    assert cfg.fingerprint() == parse_config({**data, "workers": 4}).fingerprint()
    assert cfg.fingerprint() != parse_config(apply_overrides(data, ["seed=8"])).fingerprint()


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(10, 12)
    assert lo == pytest.approx(0.5520, abs=1e-3) and hi == pytest.approx(0.9530, abs=1e-3)
    assert wilson_interval(0, 12)[0] == 0.0 and wilson_interval(12, 12)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for n in range(1, 201):  # exact at the ends, whatever the rounding
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0


def test_plots_accept_bounds_a_hair_inside_the_rate() -> None:
    from memp.experiment.plots import condition_bars, topk_curve

    row = {"arm": "all-won", "success_rate": 1.0, "ci_low": 0.785, "ci_high": 0.9999999999,
           "mean_steps": 10.0, "successes": 14, "n": 14, "k": 1}  # fmt: skip
    assert condition_bars("t", [row]).startswith(b"\x89PNG")
    assert topk_curve("t", {"f": [row, {**row, "k": 2}]}).startswith(b"\x89PNG")


def test_split_groups() -> None:
    assert split_groups(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]


def test_condition_metrics_and_comparison() -> None:
    from memp.experiment.metrics import compare, condition_metrics
    from memp.experiment.rundb import EpisodeRow

    def row(arm: str, ok: bool, steps: int, tokens: int) -> EpisodeRow:
        return EpisodeRow(
            id=0,
            phase="eval",
            env="e",
            arm=arm,
            model="m",
            split="test",
            episode=0,
            group=0,
            seed=0,
            task="t",
            success=ok,
            steps=steps,
            reward=0.0,
            prompt_tokens=tokens,
            completion_tokens=1,
            wall_s=2.0,
            finished_at="",
        )

    # The baseline gives up early (5 steps) on failures: with failures counted as the
    # 30-step budget, it is not "efficient".
    base = condition_metrics(
        "e", "none", [row("none", False, 5, 100)] * 3 + [row("none", True, 20, 100)], 30
    )
    mem = condition_metrics(
        "e", "mem", [row("mem", True, 10, 0)] * 3 + [row("mem", False, 30, 0)], 30
    )
    assert base.success_rate == 0.25 and base.mean_steps_played == 8.75 and base.mean_steps == 27.5
    assert base.tokens_per_success == 404 and mem.tokens_per_success == 4 / 3
    assert mem.mean_steps_success == 10 and mem.mean_wall_s == 2.0
    c = compare(base, mem)
    assert c["success_points"] == 50.0 and c["steps_reduction"] == round((27.5 - 15) / 27.5, 4)


def test_per_condition_skill_switches_are_checked_and_reach_the_policy() -> None:
    from memp.embed.hashing import HashEmbedder
    from memp.experiment.policies import make_policy
    from memp.memory import Memory

    arm = {
        "name": "no-priors",
        "memory": "trajectory",
        "mode": "executable",
        "skill": {"priors": False},
    }
    cfg = parse_config({**BASE, "conditions": [{"name": "none"}, arm]})
    cond = cfg.conditions[1]
    mem = Memory(":memory:", embedder=HashEmbedder())
    policy = make_policy(mode="executable", llm=None, memory=mem, condition=cond, agent=cfg.agent)
    assert policy.config.priors is False and policy.config.rank is True
    with pytest.raises(InvalidInput, match=r"unknown skill option.*prior"):
        parse_config({**BASE, "conditions": [{**arm, "skill": {"prior": False}}]})


def test_train_and_eval_options_apply_to_their_side_only() -> None:
    env = {
        **BASE["env"],
        "train_split": "train",
        "eval_split": "dev",
        "options": {"a": 1},
        "train_options": {"b": 2},
        "eval_options": {"a": 3},
    }
    cfg = parse_config({**BASE, "env": env})
    (e,) = cfg.env
    assert e.options_for("train") == {"a": 1, "b": 2}
    assert e.options_for("dev") == {"a": 3}


def test_a_subset_of_conditions_keeps_a_target_on_what_is_kept() -> None:
    from memp.cli.experiments import _experiment_data

    def data(only: str) -> dict:
        return _experiment_data(str(ROOT / "experiments" / "retrieval_policy.toml"), [],
                                model=None, mode=None, episodes=None, train_episodes=None,
                                only=only)  # fmt: skip

    kept = data("exec-random,exec-query")
    assert kept["target"]["conditions"] == ["exec-query"]
    # the run knows it plays a subset (its report says what is missing), and that is not
    # part of what it measures
    full = kept["subset_of"]
    assert set(full) > {"exec-random", "exec-query"} and "no-memory" in full
    cfg = parse_config(kept)
    assert cfg.fingerprint() == parse_config({**kept, "subset_of": []}).fingerprint()
    from memp.experiment.report import _incomplete

    summary = {
        "totals": {"eval_episodes": 4, "planned_eval_episodes": 4},
        "config": cfg.model_dump(mode="json"),
    }
    note = _incomplete(summary)
    assert note is not None and "plays 2 of the experiment's" in note and "no-memory" in note
    assert parse_config(kept).target.baseline == "exec-random"
    assert "target" not in data("no-memory,exec-query")  # its baseline left out
    assert "target" not in data("no-memory,exec-random")  # nothing it judges is kept
    with pytest.raises(InvalidInput, match="not one of the conditions"):
        parse_config({**BASE, "target": {"conditions": ["nowhere"]}})
