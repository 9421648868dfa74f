"""ScienceWorld through the adapter: official splits, gold paths, the -100 focus rule, Java."""

from __future__ import annotations

import pytest
from env_data import llm_steps

from memp.envs import make_env
from memp.policies import ExpertPolicy


@pytest.fixture(scope="module")
def sw():
    env = make_env("scienceworld", "dev")
    yield env
    env.close()


def test_all_30_tasks_with_official_variations(sw) -> None:
    assert len(sw.task_names) == 30
    assert len(sw) == 1796  # the official dev variations of all tasks
    first = sw.episodes()[:30]
    assert sorted(t for t, _ in first) == sorted(sw.task_names)  # round-robin over tasks


def test_gold_path_wins_through_the_adapter() -> None:
    env = make_env("scienceworld", "test", tasks=["find-living-thing"])
    try:
        traj = ExpertPolicy().run(env, 0)
        assert traj.success is True
        assert traj.metadata["score"] == 100.0
        assert traj.metadata["stopped"] == "won"
        assert "focus on" in " ".join(traj.actions)
    finally:
        env.close()


def test_wrong_focus_ends_the_episode_with_minus_100() -> None:
    env = make_env("scienceworld", "train", tasks=["find-living-thing"])
    try:
        _obs, info = env.reset(episode=0)
        assert "focus on air" in info["admissible"]
        _obs, _reward, terminated, truncated, info = env.step("focus on air")
        assert terminated and not truncated
        assert info["score"] == -100.0 and not info["won"]
    finally:
        env.close()


def test_expert_actions_mid_episode_keep_the_state() -> None:
    env = make_env("scienceworld", "dev", tasks=["find-living-thing"])
    try:
        env.reset(episode=0)
        env.step("look around")
        gold = env.expert_actions()
        assert gold and env._taken == ["look around"]
        assert env.admissible_actions()
    finally:
        env.close()


def test_unknown_task_lists_the_valid_ones() -> None:
    from memp.errors import UnknownOption

    with pytest.raises(UnknownOption, match="boil"):
        make_env("scienceworld", tasks=["bake-a-cake"])


def test_agent_with_the_local_model_takes_valid_actions(sw, local_llm) -> None:
    traj = llm_steps(sw, local_llm, 1)
    assert traj.metadata["split"] == "dev" and traj.environment == "scienceworld"
