"""Every policy has the one ``run(env, episode) -> Trajectory`` shape; old imports still work."""

from __future__ import annotations

import pytest

from memp.agents import ExpertPolicy, Policy, ReActAgent, SkillAgent, collect, parse_env_options
from memp.embed.hashing import HashEmbedder
from memp.errors import InvalidInput
from memp.memory import Memory


def test_policies_share_the_protocol() -> None:
    memory = Memory(":memory:", embedder=HashEmbedder())
    try:
        for policy in (ExpertPolicy(), SkillAgent(memory), ReActAgent(llm=None)):  # type: ignore[arg-type]
            assert isinstance(policy, Policy)
    finally:
        memory.close()


def test_expert_episodes_are_collected_and_recorded(tmp_path) -> None:
    from memp.envs import make_env

    env = make_env("twx", split="train")
    memory = Memory(tmp_path / "m.db", embedder=HashEmbedder())
    try:
        seen: list[int] = []
        trajs = collect(
            env, ExpertPolicy(), [0, 1], memory=memory, on_episode=lambda e, _t: seen.append(e)
        )
        assert seen == [0, 1] and all(t.success for t in trajs)
        assert all(t.metadata["policy"] == "expert" and t.steps for t in trajs)
    finally:
        memory.close()
        env.close()


def test_env_options_are_typed() -> None:
    assert parse_env_options(["game=coin", "n=5", "hard=true", "p=0.5"]) == {
        "game": "coin",
        "n": 5,
        "hard": True,
        "p": 0.5,
    }
    with pytest.raises(InvalidInput, match="not key=value"):
        parse_env_options(["oops"])


def test_old_module_paths_name_the_same_objects() -> None:
    import memp.agent
    import memp.execute
    import memp.policies
    from memp.agents import skill
    from memp.skills import compile, runtime

    assert memp.agent.ReActAgent is ReActAgent
    assert memp.policies.ExpertPolicy is ExpertPolicy and memp.policies.collect is collect
    assert memp.execute.SkillAgent is skill.SkillAgent
    assert memp.execute.ExecConfig is runtime.ExecConfig
    assert memp.execute.build_skill_memory is compile.build_skill_memory
