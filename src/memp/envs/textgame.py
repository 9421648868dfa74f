"""Shared pieces of the text-game adapters: regex-driven action semantics and
helpers that read object lists out of room descriptions.

Each adapter states its own facts (which verbs move, which change nothing, what a
failure message looks like) as data; the matching logic lives here once.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from memp.errors import MissingDependency

_ARTICLE = re.compile(r"^(?:a|an|the|some)\s+", re.I)
_SUBSTANCE = re.compile(r"^(?:substance|something) called\s+", re.I)
_TRAILING_NUM = re.compile(r"\s+\d+$")
_PAREN = re.compile(r"\s*\([^)]*\)")


def clean_name(text: str) -> str:
    """``"a red apple,"`` -> ``"red apple"``."""
    text = _PAREN.sub("", text.split(". ")[0])
    text = re.split(r",?\s+that\s+(?:is|has)\b", text)[0]
    text = text.strip().strip(".,;:!").strip()
    text = _ARTICLE.sub("", text)
    text = _SUBSTANCE.sub("", text)
    text = re.sub(r"\s+(?:on|in) it$", "", text)
    return text.strip()


def split_list(text: str) -> list[str]:
    """``"a knife, a red apple, and a cookbook"`` -> ``["knife", "red apple", "cookbook"]``."""
    parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", text)
    out = []
    for p in parts:
        name = clean_name(p)
        if name and not name.lower().startswith(("nothing", "that ")):
            out.append(name)
    return out


def _at_start(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    return [re.compile(rf"^\s*(?:{p})", re.I) for p in patterns]


@dataclass
class RegexSemantics:
    """Action semantics described by patterns (all case-insensitive).

    ``navigation`` / ``noop``: patterns matched at the start of an action.
    ``failure``: substrings of an observation that mean "that did not work".
    ``target``: patterns whose group ``loc`` is the place an action goes to / acts on;
    the first that matches wins, so list the specific ones (``put X in Y``) first.
    ``seen``: patterns whose group ``items`` is a list of objects in an observation.
    ``qualifier``: a pattern where a name's qualifying tail starts (``cup containing
    water in table``): the type is the head noun before it.
    ``places``: names the environment declares up front (its rooms); each is its own
    type ("living room" is not a "room" like any other).
    ``irreversible``: patterns matched at the start of an action that commits to an
    answer (``focus on``).
    ``here``: a pattern whose group ``loc`` is the place an observation says the agent
    is in. ``opens``: patterns whose group ``loc`` is a place an action opens the way
    to (``open door to (?P<loc>.+)``). ``look``: the action that lists what a place
    holds, where arriving does not (``look around``).
    """

    navigation: Sequence[str] = ()
    noop: Sequence[str] = ()
    failure: Sequence[str] = ()
    target: Sequence[str] = ()
    seen: Sequence[str] = ()
    qualifier: str | None = None
    places: Sequence[str] = ()
    irreversible: Sequence[str] = ()
    here: str | None = None
    opens: Sequence[str] = ()
    look: str | None = None
    _nav: list[re.Pattern[str]] = field(init=False, repr=False)
    _commit: list[re.Pattern[str]] = field(init=False, repr=False)
    _noop: list[re.Pattern[str]] = field(init=False, repr=False)
    _target: list[re.Pattern[str]] = field(init=False, repr=False)
    _seen: list[re.Pattern[str]] = field(init=False, repr=False)
    _places: frozenset[str] = field(init=False, repr=False)
    _here: re.Pattern[str] | None = field(init=False, repr=False)
    _opens: list[re.Pattern[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._nav = _at_start(self.navigation)
        self._noop = _at_start(self.noop)
        self._commit = _at_start(self.irreversible)
        self._target = [re.compile(p, re.I) for p in self.target]
        self._seen = [re.compile(p, re.I | re.M) for p in self.seen]
        self._places = frozenset(p.lower() for p in self.places)
        self._here = re.compile(self.here, re.I) if self.here else None
        self._opens = [re.compile(p, re.I) for p in self.opens]

    def is_navigation(self, action: str) -> bool:
        return any(p.search(action) for p in self._nav)

    def is_noop(self, action: str) -> bool:
        return any(p.search(action) for p in self._noop)

    def failed(self, action: str, observation: str) -> bool:
        low = observation.lower()
        return any(f.lower() in low for f in self.failure)

    def location(self, action: str) -> str | None:
        for p in self._target:
            m = p.search(action.strip())
            if m:
                return clean_name(m.group("loc")) or None
        return None

    def seen_objects(self, observation: str) -> list[str]:
        found: list[str] = []
        for p in self._seen:
            for m in p.finditer(observation):
                for name in split_list(m.group("items")):
                    if name not in found:
                        found.append(name)
        return found

    def known_names(self) -> Sequence[str]:
        return self.places

    def is_irreversible(self, action: str) -> bool:
        return any(p.search(action) for p in self._commit)

    def place_of(self, observation: str) -> str | None:
        m = self._here.search(observation) if self._here else None
        return (clean_name(m.group("loc")) or None) if m else None

    def look_around(self) -> str | None:
        return self.look

    def way_to(self, action: str) -> str | None:
        for p in self._opens:
            m = p.search(action.strip())
            if m:
                return clean_name(m.group("loc")) or None
        return None

    def entity_type(self, name: str) -> str:
        if name.strip().lower() in self._places:
            return name.strip().lower()
        # Instances carry a number in some games ("apple 1"); the head noun is the type.
        name = _TRAILING_NUM.sub("", clean_name(name))
        if self.qualifier:
            name = re.split(self.qualifier, name, maxsplit=1, flags=re.I)[0]
        words = name.split()
        return words[-1].lower() if words else name.lower()


def dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


class JavaNotFound(MissingDependency):
    """A simulator that runs on the JVM (ScienceWorld, TextWorldExpress) found no Java."""

    def __init__(self, env: str) -> None:
        Exception.__init__(
            self,
            f"{env} runs on Java (11 or newer) and no Java runtime was found: `java` is not "
            "on PATH and JAVA_HOME does not point to one. Install one (e.g. `apt-get install "
            "openjdk-17-jre-headless` or `brew install openjdk@17`) or set JAVA_HOME to an "
            "existing JDK/JRE.",
        )


def find_java() -> str | None:
    """The java executable the simulators' launcher (py4j) would use, if any."""
    home = os.environ.get("JAVA_HOME")
    if home:
        cand = Path(home) / "bin" / "java"
        if cand.exists():
            return str(cand)
    return shutil.which("java")
