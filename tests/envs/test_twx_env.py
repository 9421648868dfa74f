"""TextWorldExpress (twc, cookingworld) through the adapter: gold paths, agent, Java."""

from __future__ import annotations

import pytest
from env_data import llm_steps

from memp.envs import make_env
from memp.policies import ExpertPolicy


@pytest.fixture(scope="module")
def twc():
    env = make_env("twx", "test", game="twc", params="numLocations=1,numItemsToPutAway=2")
    yield env
    env.close()


@pytest.mark.parametrize("game", ["twc", "cookingworld"])
def test_gold_path_wins_through_the_adapter(game: str) -> None:
    env = make_env("twx", "dev", game=game)
    try:
        assert len(env) == 1000
        obs, info = env.reset(episode=2)
        assert info["task"] and obs and info["admissible"]
        assert info["seed"] == 10002  # dev seeds start at 10000
        traj = ExpertPolicy().run(env, 2)
        assert traj.success is True
        assert traj.metadata["stopped"] == "won"
        assert all(s.actor == "expert" for s in traj.steps)
        assert traj.environment == "twx" and traj.metadata["split"] == "dev"
    finally:
        env.close()


def test_semantics_read_the_room(twc) -> None:
    obs, _info = twc.reset(episode=0)
    seen = twc.semantics.seen_objects(obs)
    assert seen, obs
    assert all("that " not in s for s in seen)
    assert twc.semantics.is_navigation("move north")
    assert twc.semantics.is_noop("look around")
    assert twc.semantics.location("put clean blue socks in chest of drawers") == "chest of drawers"
    obs, *_ = twc.step("fly to the moon")
    assert twc.semantics.failed("fly to the moon", obs)


def test_unknown_game_and_split_are_clear() -> None:
    from memp.errors import UnknownOption

    with pytest.raises(UnknownOption, match="cookingworld"):
        make_env("twx", game="zork")
    with pytest.raises(UnknownOption, match="train"):
        make_env("twx", "holdout")


def test_agent_with_the_local_model_takes_valid_actions(twc, local_llm) -> None:
    traj = llm_steps(twc, local_llm, 0)
    assert traj.model == local_llm.name
    assert traj.metadata["episode"] == 0 and traj.metadata["env"] == "twx"
