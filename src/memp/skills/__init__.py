"""Executable procedures, no LLM inside.

:mod:`.text` finds and abstracts what actions name, :mod:`.compile` turns
same-template trajectories into a :class:`~memp.types.Program`, :mod:`.priors`
knows where things were found before, and :mod:`.runtime` plays one episode of a
program. The agent that hands over to an LLM is :class:`memp.agents.skill.SkillAgent`.
"""

from memp.skills.compile import build_skill_memory, compile_program, describe, task_template
from memp.skills.priors import Priors
from memp.skills.runtime import ExecConfig, SkillRun
from memp.skills.text import Mentions, abstract, read_value

__all__ = [
    "ExecConfig",
    "Mentions",
    "Priors",
    "SkillRun",
    "abstract",
    "build_skill_memory",
    "compile_program",
    "describe",
    "read_value",
    "task_template",
]
