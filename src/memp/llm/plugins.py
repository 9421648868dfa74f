"""Spec registries: how a spec string ("local", "openai:gpt-4o", ...) finds its backend.

One :class:`Registry` for LLMs (:data:`memp.llm.LLMS`) and one for embedders
(:data:`memp.embed.EMBEDDERS`), in the style of Simon Willison's ``llm`` plugins: the
built-in backends register through the same :meth:`Registry.register` a third-party
package would call, and installed packages are found through the entry point group
``memp.llm`` / ``memp.embed``. An entry point names a module (importing it registers
its backends) or a callable taking the registry.

A plugin parses the specs it understands into a :class:`Spec` and builds backends from
them. Plugins are asked in registration order and the first that claims a spec wins,
so a plugin cannot take over a built-in's specs.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from memp.errors import InvalidInput

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spec:
    """A parsed spec: which kind of backend, which model, where, and under what name."""

    text: str
    kind: str
    model: str
    base_url: str | None = None
    name: str | None = None  # display name; None lets the backend choose

    def endpoint(self) -> dict[str, str]:
        """``base_url`` and ``name`` as keyword arguments, only those the spec fixes."""
        return {k: v for k, v in (("base_url", self.base_url), ("name", self.name)) if v}


@dataclass(frozen=True)
class Plugin(Generic[T]):
    name: str
    # Returns None for specs that are not this plugin's; raises InvalidInput for
    # specs that are its own but wrong ("local:huge").
    parse: Callable[[str], Spec | None]
    # "module:attr.path" (imported on first use, so unused backends cost nothing) or
    # the callable itself: build(spec, cache, **options) for LLMs (the backend keeps
    # its completion cache), build(spec, **options) for embedders (wrapped outside).
    build: str | Callable[..., T]
    help: tuple[str, ...] = ()
    # Whether the factory's result may be wrapped in a cache (a hashing embedder is
    # cheaper than a lookup; a scripted LLM must answer from its script).
    cached: bool = True

    def builder(self) -> Callable[..., T]:
        if callable(self.build):
            return self.build
        module, _, attrs = self.build.partition(":")
        target: Any = importlib.import_module(module)
        for attr in attrs.split("."):
            target = getattr(target, attr)
        return target


class Registry(Generic[T]):
    """The plugins of one backend family, asked in registration order."""

    def __init__(self, what: str, group: str, *, builtins: Callable[[Registry[T]], None]) -> None:
        self.what = what
        self.group = group
        self._builtins = builtins
        self._plugins: list[Plugin[T]] = []
        self._loaded = False
        self._lock = threading.RLock()

    def register(
        self,
        name: str,
        parse: Callable[[str], Spec | None],
        build: str | Callable[..., T],
        *,
        help: Sequence[str] = (),
        cached: bool = True,
    ) -> Plugin[T]:
        plugin = Plugin(name, parse, build, tuple(help), cached)
        self._load()  # built-ins first, whenever a plugin registers
        with self._lock:
            if any(p.name == name for p in self._plugins):
                raise InvalidInput(f"a {self.what} plugin named {name!r} is already registered")
            self._plugins.append(plugin)
        return plugin

    def plugins(self) -> list[Plugin[T]]:
        self._load()
        return list(self._plugins)

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            self._builtins(self)
            for ep in entry_points(group=self.group):
                try:
                    loaded = ep.load()
                    if callable(loaded):
                        loaded(self)
                except Exception as e:  # a broken plugin must not take the built-ins down
                    log.warning("memp: %s plugin %s failed to load: %s", self.what, ep.name, e)

    def help(self) -> str:
        return " | ".join(h for p in self.plugins() for h in p.help)

    def parse(self, spec: str) -> tuple[Plugin[T], Spec]:
        text = spec.strip()
        if not text:
            raise InvalidInput(f"empty {self.what} spec; use one of: {self.help()}")
        for plugin in self.plugins():
            parsed = plugin.parse(text)
            if parsed is not None:
                return plugin, parsed
        raise InvalidInput(f"unknown {self.what} spec {spec!r}; use one of: {self.help()}")


# Specs shared by both families ------------------------------------------------------


def after(text: str, prefix: str) -> str | None:
    """What follows ``prefix:`` in ``text`` ("" for a bare ``prefix:``), else None."""
    return text[len(prefix) + 1 :] if text.startswith(prefix + ":") else None


def ollama_url() -> str:
    host = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
    if "://" not in host:
        host = "http://" + host
    return host.rstrip("/") + "/v1"


def endpoint(text: str, what: str, example: str) -> tuple[str, str] | None:
    """``http(s)://host:port/v1#<model>`` as (url, model); None for other specs."""
    if not text.startswith(("http://", "https://")):
        return None
    url, sep, model = text.partition("#")
    if not sep or not model:
        raise InvalidInput(
            f"{what} endpoint {text!r} needs a model after '#', e.g. http://127.0.0.1:8000/v1#{example}"
        )
    return url, model


class Shared(Generic[T]):
    """One loaded instance per key: local models cost seconds and hundreds of MB to load."""

    def __init__(self) -> None:
        self._items: dict[Hashable, T] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._items:
                self._items[key] = load()
            return self._items[key]
