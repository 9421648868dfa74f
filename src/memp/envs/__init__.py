"""Environments: one adapter per benchmark, each a subclass of :class:`Env`
(:mod:`memp.envs.base`: the guards and bookkeeping they share).

``make_env(name, split, **options)`` builds one. Adapters are imported lazily so
that ``import memp`` never pulls in Java bridges, game engines or spaCy; a missing
optional package becomes a :class:`MissingDependency` that says how to install it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

from memp.envs.base import ActionSemantics, Env
from memp.errors import MissingDependency, UnknownOption

# name -> (module, class, the third-party module the adapter needs, its pip name)
_REGISTRY: dict[str, tuple[str, str, str | None, str | None]] = {
    "alfworld": ("memp.envs.alfworld", "AlfworldEnv", "alfworld", "alfworld"),
    "scienceworld": ("memp.envs.scienceworld", "ScienceWorldEnv", "scienceworld", "scienceworld"),
    "textworld": ("memp.envs.textworld", "TextWorldEnv", "textworld", "textworld"),
    "twx": ("memp.envs.twx", "TWXEnv", "textworld_express", "textworld-express"),
    "travelplanner": ("memp.envs.travelplanner", "TravelPlannerEnv", None, None),
}

# Friendly aliases people type.
_ALIASES = {
    "sciworld": "scienceworld",
    "textworld-express": "twx",
    "textworldexpress": "twx",
    "tw-cooking": "textworld",
}


def env_names() -> list[str]:
    return sorted(_REGISTRY)


def require(module: str, package: str, why: str = "") -> Any:
    """Import an optional third-party module or raise MissingDependency."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(package, extra="envs", why=why or f"({e})") from e


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (some write on import)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def env_class(name: str) -> type:
    key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise UnknownOption("environment", str(name), _REGISTRY)
    module, cls, needs, package = _REGISTRY[key]
    if needs is not None and package is not None and not available(needs):
        raise MissingDependency(package, extra="envs", why=f"the {key} environment needs it")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        # The adapter imports the third-party package at module level in places.
        missing = getattr(e, "name", None) or package or key
        raise MissingDependency(
            str(missing), extra="envs", why=f"the {key} environment needs it"
        ) from e
    return getattr(mod, cls)


def make_env(name: str, split: str = "train", **options: Any) -> Env:
    """Build environment ``name`` on ``split``.

    Names: alfworld, scienceworld, textworld, twx (TextWorldExpress), travelplanner.
    Options are passed to the adapter (e.g. ``data_dir=`` for ALFWorld,
    ``db_dir=`` / ``queries=`` for TravelPlanner, ``game=`` for twx).
    """
    return env_class(name)(split=split, **options)


__all__ = ["ActionSemantics", "Env", "available", "env_class", "env_names", "make_env", "require"]
