"""Skill sessions: skills the service steps for remote agents that own their environments.

A remote agent asks for a skill (a task and an environment name) and gets a session id;
it then sends each observation and gets the next action, and finally the outcome, which
is counted on the procedures in the store. The sessions themselves live **in this
process's memory only**: a restart forgets them (the agent starts a new one; nothing
stored is lost), and with several server processes an agent must reach the same one.
There are at most ``max_sessions`` at a time, and one not used for ``idle_timeout``
seconds is dropped.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from memp.errors import MempError, NotFound
from memp.skills.handle import NoSkill, Skill

DEFAULT_MAX_SESSIONS = 256
DEFAULT_IDLE_TIMEOUT = 15 * 60.0


__all__ = ["NoSkill", "Session", "SkillSessions", "TooManySessions"]


class TooManySessions(MempError):
    """Every session slot is taken by a live session (answered 429)."""


@dataclass
class Session:
    namespace: str
    environment: str
    skill: Skill
    used: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class SkillSessions:
    """The live skill sessions of one service (see the module docstring)."""

    def __init__(
        self,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1 or idle_timeout <= 0:
            raise ValueError("max_sessions must be >= 1 and idle_timeout > 0")
        self.max_sessions, self.idle_timeout, self._clock = max_sessions, idle_timeout, clock
        self._live: dict[str, Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._live)

    def _expire(self) -> None:
        now = self._clock()
        for sid in [s for s, x in self._live.items() if now - x.used > self.idle_timeout]:
            del self._live[sid]

    def check_room(self) -> None:
        """Raise :class:`TooManySessions` when no session can be opened now."""
        with self._lock:
            self._full()

    def _full(self) -> None:
        self._expire()
        if len(self._live) >= self.max_sessions:
            raise TooManySessions(
                f"the server holds its maximum of {self.max_sessions} skill sessions; "
                "finish the ones you are done with (skill finish), or retry after "
                f"{self.idle_timeout:g} s, when idle ones are dropped"
            )

    def open(self, namespace: str, environment: str, skill: Skill) -> str:
        """Keep ``skill`` as a new session of ``namespace``; returns its id."""
        with self._lock:
            self._full()
            sid = "skill_" + secrets.token_urlsafe(16)
            self._live[sid] = Session(namespace, environment, skill, self._clock())
            return sid

    @contextmanager
    def using(self, namespace: str, session_id: str) -> Iterator[Session]:
        """The session ``session_id`` of ``namespace``, held for one step (its skill is
        stepped by one request at a time). Another namespace's session is unknown here."""
        with self._lock:
            self._expire()
            session = self._live.get(session_id)
            if session is None or session.namespace != namespace:
                raise NotFound(
                    f"no skill session {session_id!r}: it was never started, is finished, "
                    f"or was idle longer than {self.idle_timeout:g} s; start a new one "
                    "(POST /v1/skills, or the skill_start tool)"
                )
            session.used = self._clock()
        with session.lock:
            try:
                yield session
            finally:
                session.used = self._clock()

    def close(self, session_id: str) -> None:
        with self._lock:
            self._live.pop(session_id, None)
