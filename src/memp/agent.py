"""Kept for existing imports: the ReAct agent lives in :mod:`memp.agents.react`."""

from memp.agents.react import ReActAgent, detect_loop, map_action, normalize, parse_action

__all__ = ["ReActAgent", "detect_loop", "map_action", "normalize", "parse_action"]
