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


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.toml")), ids=lambda p: p.name)
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
        parse_config({**BASE, "conditions": [{"name": "a", "memory": "script", "mode": "executable"}]})
    with pytest.raises(InvalidInput, match="duplicate condition"):
        parse_config({**BASE, "conditions": [{"name": "a"}, {"name": "a"}]})


def test_overrides_defaults_and_arms() -> None:
    data = {**BASE, "condition_defaults": {"k": 5}, "models": ["m1", "m2"]}
    data = apply_overrides(data, ["seed=7", "env.*.eval_episodes=[1, 3]", "conditions.traj.k=2",
                                  "agent.max_steps=9"])
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


def test_split_groups() -> None:
    assert split_groups(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
