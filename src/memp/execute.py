"""Kept for existing imports: executable procedures live in :mod:`memp.skills`, the
agent that runs them in :mod:`memp.agents.skill`."""

from memp.agents.skill import SkillAgent
from memp.skills import *  # noqa: F403
from memp.skills import __all__ as _skills

__all__ = [*_skills, "SkillAgent"]
