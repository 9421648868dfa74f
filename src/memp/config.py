"""Choosing backends, one way everywhere.

Each setting resolves as: CLI flag > environment variable > ``memp.toml`` > default.

| key         | env var          | default    | examples                                               |
|-------------|------------------|------------|--------------------------------------------------------|
| llm         | MEMP_LLM         | local      | local, local:fast, model.gguf, openai:gpt-4o, ollama:qwen2.5:7b, anthropic:<model>, http://host:8000/v1#<model> |
| embedder    | MEMP_EMBEDDER    | local      | local, hash, openai:text-embedding-3-small, http://host/v1#<model>, st:<model> |
| db          | MEMP_DB          | memp.db    | a SQLite path or a postgresql:// URL                   |
| llm_cache   | MEMP_LLM_CACHE   | on         | on, off, or a path to the completion cache file        |
| embed_cache | MEMP_EMBED_CACHE | on         | on, off, or a path to the embedding cache file         |

``memp.toml`` is read from ``$MEMP_CONFIG`` or the current directory; keys may sit at
the top level or under a ``[memp]`` table::

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
    "db": "memp.db",
    "llm_cache": "on",
    "embed_cache": "on",
}
ENV_VARS: dict[str, str] = {k: f"MEMP_{k.upper()}" for k in DEFAULTS}
CONFIG_FILE = "memp.toml"


class Setting(NamedTuple):
    value: str
    source: str  # "cli", "env MEMP_LLM", "memp.toml (path)", "default"


def config_path() -> Path | None:
    env = os.environ.get("MEMP_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise InvalidInput(f"MEMP_CONFIG points at {p}, which does not exist")
        return p
    p = Path.cwd() / CONFIG_FILE
    return p if p.is_file() else None


def load_file(path: Path | None = None) -> dict[str, str]:
    """The settings in a memp.toml (validated: unknown keys are errors, not ignored)."""
    path = path or config_path()
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"{path} is not valid TOML: {e}") from e
    table = data.get("memp", data)
    if not isinstance(table, dict):
        raise InvalidInput(f"{path}: [memp] must be a table")
    out: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            continue  # other tables (e.g. experiment settings) belong to other readers
        if key not in DEFAULTS:
            raise InvalidInput(
                f"{path}: unknown setting {key!r}; known settings: {', '.join(DEFAULTS)}"
            )
        if not isinstance(value, str | bool):
            raise InvalidInput(f"{path}: {key} must be a string, got {value!r}")
        out[key] = ("on" if value else "off") if isinstance(value, bool) else value
    return out


def resolve(key: str, cli: str | None = None, *, file: dict[str, str] | None = None) -> Setting:
    if key not in DEFAULTS:
        raise InvalidInput(f"unknown setting {key!r}; known settings: {', '.join(DEFAULTS)}")
    if cli:
        return Setting(cli, "cli")
    env = os.environ.get(ENV_VARS[key])
    if env:
        return Setting(env, f"env {ENV_VARS[key]}")
    if file is None:
        file = load_file()
    if key in file:
        return Setting(file[key], f"{CONFIG_FILE} ({config_path()})")
    return Setting(DEFAULTS[key], "default")


def settings(**cli: str | None) -> dict[str, Setting]:
    """Every setting with where its value came from (for ``memp doctor``)."""
    file = load_file()
    return {k: resolve(k, cli.get(k), file=file) for k in DEFAULTS}


def cache_setting(value: str) -> Path | bool | None:
    """``on`` -> True (default location), ``off`` -> None, anything else -> a path."""
    v = value.strip()
    if v.lower() in {"on", "true", "1", "yes"}:
        return True
    if v.lower() in {"off", "false", "0", "no", "none"}:
        return None
    return Path(v).expanduser()
