"""ALFWorld: the adapter (:mod:`.env`), where games come from (:mod:`.games`) and the
local generator of ALFWorld-format games (:mod:`.generate`, also importable as
``memp.envs.alfworld_gen``)."""

from __future__ import annotations

from memp.envs.alfworld.env import AlfworldEnv, AlfworldSemantics
from memp.envs.alfworld.games import ENV_SPLITS, game_task_type, resolve_data
from memp.envs.alfworld.generate import (
    MANIFEST,
    TASK_TYPES,
    ExpertRunner,
    default_cache_dir,
    quiet_alfworld_import,
)

__all__ = [
    "ENV_SPLITS",
    "MANIFEST",
    "TASK_TYPES",
    "AlfworldEnv",
    "AlfworldSemantics",
    "ExpertRunner",
    "default_cache_dir",
    "game_task_type",
    "quiet_alfworld_import",
    "resolve_data",
]
