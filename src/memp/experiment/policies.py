"""Policies the runner plays episodes with; all share ``.run(env, episode) -> Trajectory``.

- ``expert``: :class:`memp.agents.expert.ExpertPolicy` replays the expert / gold actions.
- ``prompt``: :class:`memp.agents.react.ReActAgent`, retrieved procedures pasted into the prompt.
- ``executable``: :class:`memp.agents.skill.SkillAgent`, retrieved procedures run as skills
  (or the environment's own ``skill_policy(memory, llm=, max_steps=, fallback=)`` where it has one).
"""

from __future__ import annotations

from typing import Any

from memp.agents.base import Policy
from memp.errors import InvalidInput
from memp.experiment.config import AgentConfig, ConditionConfig


def retrieve_options(c: ConditionConfig) -> dict[str, Any]:
    opts: dict[str, Any] = {"strategy": c.retrieve, "k": c.k, "min_score": c.min_score}
    if c.budget_tokens is not None:
        opts["budget_tokens"] = c.budget_tokens
    return opts


def make_policy(
    *,
    mode: str,
    llm: Any,
    memory: Any,
    condition: ConditionConfig | None,
    agent: AgentConfig,
    env: Any = None,
) -> Policy:
    if mode == "expert":
        from memp.agents.expert import ExpertPolicy

        return ExpertPolicy()
    if mode == "prompt":
        from memp.agents.react import ReActAgent

        return ReActAgent(
            llm,
            memory=memory,
            retrieve_options=retrieve_options(condition) if condition and memory else None,
            max_steps=agent.max_steps,
            use_choices=agent.use_choices,
            **agent.react,
        )
    if mode == "executable":
        if memory is None:
            raise InvalidInput(
                f"condition {condition.name if condition else '?'!r}: executable mode needs a "
                "memory (set memory = 'trajectory' | 'script' | 'proceduralization')"
            )
        from memp.agents.skill import ExecConfig, SkillAgent

        opts = {
            "max_steps": agent.max_steps,
            **agent.skill,
            **(condition.skill if condition is not None else {}),
        }
        use_llm = condition.use_llm if condition is not None else True
        cfg = ExecConfig(**opts) if use_llm else ExecConfig.no_llm(**opts)
        fallback = None
        if use_llm and llm is not None:
            # Tasks no procedure covers are played by the ReAct agent with prompt memory.
            fallback = make_policy(
                mode="prompt", llm=llm, memory=memory, condition=condition, agent=agent
            )
        # An environment whose plans no generic program can write (a whole itinerary)
        # brings its own executable policy over the same memory.
        own = env.skill_policy(memory, llm=llm if use_llm else None, max_steps=cfg.max_steps,
                               fallback=fallback) if env is not None else None  # fmt: skip
        if own is not None:
            return own
        return SkillAgent(
            memory,
            llm=llm if use_llm else None,
            config=cfg,
            fallback=fallback,
            retrieve_options=retrieve_options(condition) if condition else None,
        )
    raise InvalidInput(f"unknown policy mode {mode!r}; valid: expert, prompt, executable")
