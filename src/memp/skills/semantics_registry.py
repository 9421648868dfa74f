"""Environment name -> :class:`~memp.envs.base.ActionSemantics`, without an environment.

A skill needs to know what an environment's actions mean, not the environment itself:
the memory service steps skills for remote agents that own their environments, and
``memp skill show`` prints a program without starting a game. Each adapter keeps its
semantics as data in its own module (a ``SEMANTICS`` object, or a stateless class);
this table only says where, so asking for them imports the adapter module and never
its engine (no Java, no game files, no third-party package).

The names are those of :func:`memp.envs.env_names` (a test keeps the two in step) and
of ``Procedure.environment``: the name an adapter stores its procedures under.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from memp.errors import check_choice

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics

__all__ = ["semantics_for", "semantics_names"]

# env name -> (module, attribute): an ActionSemantics object, or a class made with no arguments
_WHERE: dict[str, tuple[str, str]] = {
    "alfworld": ("memp.envs.alfworld.env", "AlfworldSemantics"),
    "scienceworld": ("memp.envs.scienceworld", "SEMANTICS"),
    "textworld": ("memp.envs.textworld", "SEMANTICS"),
    "twx": ("memp.envs.twx", "SEMANTICS"),
    "travelplanner": ("memp.envs.travelplanner.env", "SEMANTICS"),
}


def semantics_names() -> list[str]:
    return sorted(_WHERE)


@cache
def semantics_for(environment: str) -> ActionSemantics:
    """The action semantics of the environment named ``environment``; an unknown name
    is an :class:`~memp.errors.UnknownOption` listing the known ones."""
    check_choice("environment", environment, _WHERE)
    module, attr = _WHERE[environment]
    found = getattr(importlib.import_module(module), attr)
    return found() if isinstance(found, type) else found
