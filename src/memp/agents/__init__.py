"""Policies behind one protocol (``run(env, episode) -> Trajectory``).

- :class:`ExpertPolicy` (:mod:`.expert`): replays the expert / gold actions.
- :class:`ReActAgent` (:mod:`.react`): an LLM acting, procedures pasted into its prompt.
- :class:`SkillAgent` (:mod:`.skill`): procedures run as skills, the LLM where they stop.
"""

from memp.agents.base import Policy, collect, parse_env_options
from memp.agents.expert import ExpertPolicy
from memp.agents.react import ReActAgent
from memp.agents.skill import SkillAgent
from memp.skills.runtime import ExecConfig

__all__ = [
    "ExecConfig",
    "ExpertPolicy",
    "Policy",
    "ReActAgent",
    "SkillAgent",
    "collect",
    "parse_env_options",
]
