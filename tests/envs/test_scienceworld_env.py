"""ScienceWorld through the adapter: official splits, gold paths, the -100 focus rule, Java."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from memp.agent import ReActAgent
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


def test_missing_java_is_a_clear_error_and_does_not_hang() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = os.path.dirname(sys.executable)  # python only, no java
    code = """
        from memp.envs import make_env
        from memp.errors import MissingDependency
        try:
            make_env("scienceworld")
        except MissingDependency as e:
            print("ERR:", e)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "ERR: ScienceWorld runs on Java" in proc.stdout
    assert "openjdk" in proc.stdout


def test_unknown_task_lists_the_valid_ones() -> None:
    from memp.errors import UnknownOption

    with pytest.raises(UnknownOption, match="boil"):
        make_env("scienceworld", tasks=["bake-a-cake"])


def test_agent_with_the_local_model_takes_valid_actions(sw, local_llm) -> None:
    traj = ReActAgent(local_llm, max_steps=3).run(sw, 1)
    assert 1 <= len(traj.steps) <= 3
    for step in traj.steps:
        assert step.info["valid"], step.info
        assert step.actor == "llm" and step.prompt_tokens > 0
    assert traj.metadata["split"] == "dev" and traj.environment == "scienceworld"
