"""Choosing backends and the database, one way everywhere.

Each setting resolves as: CLI flag > environment variable > ``memp.toml`` > default.

| key         | env var          | default                     | examples                                |
|-------------|------------------|-----------------------------|-----------------------------------------|
| llm         | MEMP_LLM         | local                       | local, local:fast, model.gguf, openai:gpt-4o, ollama:qwen2.5:7b, anthropic:<model>, http://host:8000/v1#<model> |
| embedder    | MEMP_EMBEDDER    | local                       | local, hash, openai:text-embedding-3-small, http://host/v1#<model>, st:<model> |
| db          | MEMP_DB          | $XDG_DATA_HOME/memp/memp.db | a SQLite path or a postgresql:// URL    |
| llm_cache   | MEMP_LLM_CACHE   | on                          | on, off, or a path to the completion cache file |
| embed_cache | MEMP_EMBED_CACHE | on                          | on, off, or a path to the embedding cache file  |

The default database does not depend on the current folder (MCP clients start servers
from anywhere): ``$XDG_DATA_HOME/memp/memp.db``, i.e. ``~/.local/share/memp/memp.db``.

``memp.toml`` files are read in this order, later ones winning:

1. the user-level file ``$XDG_CONFIG_HOME/memp/memp.toml`` (``~/.config/memp/memp.toml``);
2. ``memp.toml`` in the current folder.

``$MEMP_CONFIG`` names one file that is read instead of both. Keys may sit at the top
level or under a ``[memp]`` table; a relative ``db`` path is relative to the file::

    [memp]
    llm = "ollama:qwen2.5:7b"
    embedder = "local"
    db = "memp.db"
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import NamedTuple

from memp.errors import InvalidInput

DEFAULTS: dict[str, str] = {
    "llm": "local",
    "embedder": "local",
    "db": "",  # computed by default_db(): it depends on XDG_DATA_HOME / HOME
    "llm_cache": "on",
    "embed_cache": "on",
}
ENV_VARS: dict[str, str] = {k: f"MEMP_{k.upper()}" for k in DEFAULTS}
CONFIG_FILE = "memp.toml"


class Setting(NamedTuple):
    value: str
    source: str  # "cli", "env MEMP_LLM", "memp.toml (path)", "default"


def _xdg(var: str, fallback: str) -> Path:
    # The XDG spec says a relative value is invalid and must be ignored.
    value = os.environ.get(var, "")
    base = Path(value) if value and Path(value).is_absolute() else Path(fallback).expanduser()
    return base / "memp"


def user_config_path() -> Path:
    """Where the user-level memp.toml lives (whether or not it exists)."""
    return _xdg("XDG_CONFIG_HOME", "~/.config") / CONFIG_FILE


def default_db() -> Path:
    """The database used when no flag, variable or memp.toml names one."""
    return _xdg("XDG_DATA_HOME", "~/.local/share") / "memp.db"


def config_path() -> Path | None:
    """The project-level memp.toml: ``$MEMP_CONFIG``, else ./memp.toml if present."""
    env = os.environ.get("MEMP_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise InvalidInput(f"MEMP_CONFIG points at {p}, which does not exist")
        return p
    p = Path.cwd() / CONFIG_FILE
    return p if p.is_file() else None


def config_files() -> list[Path]:
    """The memp.toml files that are read, lowest precedence first."""
    project = config_path()
    if os.environ.get("MEMP_CONFIG"):
        return [project] if project else []
    files = [p for p in (user_config_path(), project) if p is not None and p.is_file()]
    if len(files) == 2 and files[0].resolve() == files[1].resolve():
        files = files[:1]  # run from inside ~/.config/memp
    return files


def load_file(path: Path | None = None) -> dict[str, str]:
    """The settings in one memp.toml (validated: unknown keys are errors, not ignored).

    Without ``path``, every file of :func:`config_files` merged (later files win).
    """
    if path is None:
        out: dict[str, str] = {}
        for p in config_files():
            out.update(load_file(p))
        return out
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"{path} is not valid TOML: {e}; fix or remove it") from e
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from e
    table = data.get("memp", data)
    if not isinstance(table, dict):
        raise InvalidInput(f"{path}: [memp] must be a table")
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            continue  # other tables (e.g. experiment settings) belong to other readers
        if key not in DEFAULTS:
            raise InvalidInput(
                f"{path}: unknown setting {key!r}; known settings: {', '.join(DEFAULTS)}"
            )
        if not isinstance(value, str | bool):
            raise InvalidInput(f"{path}: {key} must be a string, got {value!r}")
        value = ("on" if value else "off") if isinstance(value, bool) else value
        file_db = sqlite_path(value) if key == "db" else None
        if file_db is not None:
            # A path in a config file means the same wherever memp is started from.
            value = str(path.parent / file_db)
        out[key] = value
    return out


def _file_settings() -> dict[str, Setting]:
    merged: dict[str, Setting] = {}
    for p in config_files():
        for key, value in load_file(p).items():
            merged[key] = Setting(value, f"{CONFIG_FILE} ({p})")
    return merged


def resolve(key: str, cli: str | None = None, *, file: dict[str, Setting] | None = None) -> Setting:
    if key not in DEFAULTS:
        raise InvalidInput(f"unknown setting {key!r}; known settings: {', '.join(DEFAULTS)}")
    if cli:
        return Setting(_expand(key, cli), "cli")
    env = os.environ.get(ENV_VARS[key])
    if env:
        return Setting(_expand(key, env), f"env {ENV_VARS[key]}")
    if file is None:
        file = _file_settings()
    if key in file:
        return file[key]
    if key == "db":
        return Setting(str(default_db()), "default")
    return Setting(DEFAULTS[key], "default")


def settings(**cli: str | None) -> dict[str, Setting]:
    """Every setting with where its value came from (for ``memp doctor``)."""
    file = _file_settings()
    return {k: resolve(k, cli.get(k), file=file) for k in DEFAULTS}


def _expand(key: str, value: str) -> str:
    return str(Path(value).expanduser()) if key == "db" and value.startswith("~") else value


def sqlite_path(db: str) -> Path | None:
    """The file a db spec names, or None for a server URL (postgresql://...)."""
    if db.startswith("sqlite:///"):
        return Path(db.removeprefix("sqlite:///")).expanduser()
    if "://" in db:
        return None
    return Path(db).expanduser()


def cache_setting(value: str) -> Path | bool | None:
    """``on`` -> True (default location), ``off`` -> None, anything else -> a path."""
    v = value.strip()
    if v.lower() in {"on", "true", "1", "yes"}:
        return True
    if v.lower() in {"off", "false", "0", "no", "none"}:
        return None
    return Path(v).expanduser()
