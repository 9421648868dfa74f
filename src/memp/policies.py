"""Kept for existing imports: policies live in :mod:`memp.agents`."""

from memp.agents.base import collect, parse_env_options
from memp.agents.expert import ExpertPolicy

__all__ = ["ExpertPolicy", "collect", "parse_env_options"]
