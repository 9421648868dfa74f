"""Trajectory distillation on real ALFWorld-like games: shorter, and still winning on replay."""

from __future__ import annotations

import pytest

from memp.distill import distill, expert_trajectory, replay, shorten
from skill_games import games_dir


@pytest.fixture(scope="module")
def train_env():
    from memp.envs.alfworld import AlfworldEnv

    env = AlfworldEnv("train", data_dir=games_dir("train", 6), max_steps=200)
    yield env
    env.close()


def test_distilled_expert_trajectory_is_shorter_and_replays_to_a_win(train_env) -> None:
    sem = train_env.semantics
    raws = [expert_trajectory(train_env, i) for i in range(len(train_env))]
    assert all(t.success for t in raws)
    longest = max(raws, key=lambda t: len(t.steps))
    d = distill(longest, sem, env=train_env)
    assert d.metadata["verified"] is True
    assert d.metadata["distilled_from"] == longest.id
    assert len(d.steps) < len(longest.steps)
    assert not any(sem.is_noop(s.action) or sem.failed(s.action, s.observation) for s in d.steps)
    # the stored observations are the replayed ones, and the game is won again
    won, steps, _ = replay(train_env, longest.metadata["episode"], d.actions)
    assert won and [s.observation for s in steps] == [s.observation for s in d.steps]


def test_without_an_env_distillation_only_shortens(train_env) -> None:
    raw = expert_trajectory(train_env, 0)
    d = distill(raw, train_env.semantics)
    assert d.metadata["verified"] is None
    assert len(d.steps) <= len(raw.steps)
    assert len(shorten(raw, train_env.semantics, detours=False, place_only=False).steps) >= len(
        d.steps
    )


def test_a_shortening_that_breaks_the_task_is_not_kept(train_env) -> None:
    raw = expert_trajectory(train_env, 1)
    # cut the last (winning) action: no shortening of this can win on replay
    broken = raw.model_copy(update={"steps": raw.steps[:-1]})
    d = distill(broken, train_env.semantics, env=train_env)
    assert d.metadata["verified"] is False
    assert d.actions == broken.actions
