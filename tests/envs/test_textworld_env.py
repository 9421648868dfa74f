"""TextWorld tw-cooking games generated offline: walkthrough, cache, agent."""

from __future__ import annotations

import pytest
from env_data import llm_steps

from memp.envs import make_env
from memp.errors import InvalidInput, UnknownOption
from memp.policies import ExpertPolicy


@pytest.fixture(scope="module")
def tw(tmp_path_factory):
    env = make_env("textworld", "train", n=2, level="easy", cache_dir=tmp_path_factory.mktemp("twgames"))
    yield env
    env.close()


def test_generated_game_is_won_by_its_walkthrough(tw) -> None:
    traj = ExpertPolicy().run(tw, 0)
    assert traj.success is True
    assert "cook" in traj.task.lower() or "meal" in traj.task.lower()
    assert traj.actions[-1] == "eat meal"
    path = tw.game_path(0)
    assert path.exists() and path.with_suffix(".json").exists()


def test_games_are_cached_and_reused(tw) -> None:
    path = tw.ensure_game(0)
    before = path.stat().st_mtime_ns
    obs, info = tw.reset(episode=0)
    assert tw.ensure_game(0).stat().st_mtime_ns == before
    assert info["admissible"]
    assert "kitchen" in obs.lower()
    assert "$$" not in obs  # the ASCII banner is dropped


def test_bad_options_are_clear(tw) -> None:
    with pytest.raises(UnknownOption, match="medium"):
        make_env("textworld", level="impossible")
    with pytest.raises(InvalidInput, match="out of range"):
        tw.reset(episode=5)


def test_agent_with_the_local_model_takes_valid_actions(tw, local_llm) -> None:
    traj = llm_steps(tw, local_llm, 0)
    assert traj.environment == "textworld" and traj.metadata["family"] == "cooking"
