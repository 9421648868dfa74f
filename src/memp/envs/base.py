"""The environment base class, in Gymnasium's reset/step shape.

An environment is a *suite* of episodes (games, task variations, queries) of one
split; ``reset(episode=i)`` starts episode ``i``. :class:`Env` holds what every
adapter needs the same way (episode range checks, the "reset first" and "episode is
over" guards, step counting and truncation, the info dict, an idempotent ``close``);
an adapter implements only its engine: ``__len__``, ``_reset``, ``_step`` and
``_outcome``, plus ``_close`` / ``_extra_info`` / ``expert_actions`` where it has them.

Environment-specific facts that the executable-procedure mechanisms need (which verbs
only move the agent, which are no-ops, what an observation saying "that failed" looks
like, where objects were seen) live behind :class:`ActionSemantics`, never in the
mechanisms.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from memp.errors import InvalidInput

# The keys every info dict carries (adapters add their own after these).
INFO_KEYS: tuple[str, ...] = ("task", "admissible", "won", "score")
NOT_STARTED = "no episode started; call reset(episode=i) first"
EPISODE_OVER = "the episode is over; call reset() to start another"


@runtime_checkable
class ActionSemantics(Protocol):
    """What the environment's actions mean; supplied by each adapter."""

    def is_navigation(self, action: str) -> bool:
        """The action only moves the agent (``go to desk 1``)."""
        ...

    def is_noop(self, action: str) -> bool:
        """The action changes nothing that matters for the task (look, examine, inventory)."""
        ...

    def failed(self, action: str, observation: str) -> bool:
        """The environment says the action had no effect ("Nothing happens.")."""
        ...

    def location(self, action: str) -> str | None:
        """The place an action goes to or acts on, if any (``cabinet 3``)."""
        ...

    def seen_objects(self, observation: str) -> list[str]:
        """Objects an observation reports as present (``apple 1``, ``mug 2``)."""
        ...

    def entity_type(self, name: str) -> str:
        """The type of a named instance (``apple 1`` -> ``apple``)."""
        ...

    def known_names(self) -> Sequence[str]:
        """Names the environment declares before any episode (ScienceWorld's rooms),
        each its own type; empty where names only come from what episodes show."""
        ...

    def is_irreversible(self, action: str) -> bool:
        """The action commits to an answer the episode cannot take back (ScienceWorld's
        ``focus on X``: the wrong X ends the episode at -100)."""
        ...

    def place_of(self, observation: str) -> str | None:
        """The place an observation says the agent stands in (ScienceWorld's "This room
        is called the kitchen"), or None where it does not say."""
        ...

    def way_to(self, action: str) -> str | None:
        """The place an action opens the way to without going there (``open door to
        hallway``), or None."""
        ...

    def look_around(self) -> str | None:
        """The action that lists everything in the agent's place with what each holds
        (ScienceWorld's ``look around``), where arriving does not show it; else None."""
        ...


class Env:
    """One split of an environment; each episode is one task.

    ``reset`` returns ``(observation, info)``; ``step`` returns
    ``(observation, reward, terminated, truncated, info)``. ``info`` always carries
    ``task`` (str), ``admissible`` (list[str] or None when the env has no such list),
    ``won`` (bool) and ``score`` (float), then the adapter's own keys.

    ``max_steps``: the base truncates an episode after that many steps; ``None`` where
    the engine enforces its own step limit (and reports truncation itself).
    """

    name: str = "env"  # "alfworld", "scienceworld", ...
    # the prompt family: "household" | "science" | "cooking" | "travel" | "generic"
    family: str = "generic"
    split: str = ""
    semantics: ActionSemantics
    max_steps: int | None = None
    episode_unit = "episodes"  # how the out-of-range error counts this env's episodes

    # Bookkeeping lives on the class too, so an env whose constructor failed still
    # closes (and is garbage-collected) cleanly.
    _episode: int | None = None
    _steps = 0
    _live = False  # an episode was started and the env not closed since
    _done = True
    _task = ""

    # -- what an adapter implements ------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    def _reset(self, episode: int) -> str:
        """Start ``episode`` in the engine; return the first observation."""
        raise NotImplementedError

    def _step(self, action: str) -> tuple[str, float, bool, bool]:
        """Play ``action``: (observation, reward, terminated, truncated by the engine)."""
        raise NotImplementedError

    def _outcome(self) -> tuple[bool, float]:
        """(won, score) of the current episode so far."""
        raise NotImplementedError

    def _extra_info(self) -> dict[str, Any]:
        return {}

    def _close(self) -> None:
        """Release the engine (called at most once per ``close``; errors are ignored)."""

    def admissible_actions(self) -> list[str] | None:
        return None

    def expert_actions(self) -> list[str] | None:
        """The expert / gold action sequence for the current episode, where one exists."""
        return None

    def task_type(self, episode: int | None = None) -> str | None:
        """The benchmark's task type of an episode, where the benchmark names them."""
        return None

    def step_budget(self, episode: int) -> int | None:
        """This episode's step budget where the benchmark sets one per task (e.g. from
        its gold path's length), the same for every agent; None: the run's max_steps."""
        return None

    def episode_metrics(self) -> dict[str, Any]:
        """The benchmark's own metrics of the episode just played, where it has them: a
        number per name, or a [passed, applicable] pair (reports average the one and sum
        the other as a ratio)."""
        return {}

    def skill_policy(self, memory: Any, **options: Any) -> Any:
        """The environment's own executable policy over ``memory``, for a benchmark whose
        plans no generic program can write; None: the generic skill agent plays it."""
        return None

    @property
    def task(self) -> str:
        return self._task

    # -- the protocol --------------------------------------------------------------
    def reset(
        self, *, episode: int | None = None, seed: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        if episode is None:
            episode = self._default_episode(seed)
        episode = self._check_episode(episode)
        obs = self._reset(episode)
        self._episode, self._steps, self._done, self._live = episode, 0, False, True
        return obs, self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not self._live:
            raise InvalidInput(NOT_STARTED)
        if self._done:
            return self._step_after_end(action)
        obs, reward, terminated, truncated = self._step(action)
        self._steps += 1
        if not terminated and self.max_steps is not None and self._steps >= self.max_steps:
            truncated = True
        self._done = terminated or truncated
        return obs, float(reward), terminated, truncated, self._info()

    def close(self) -> None:
        """Release the engine; safe to call twice."""
        self._live = False
        try:  # noqa: SIM105 - contextlib may be torn down when __del__ runs at exit
            self._close()
        except Exception:  # closing is best effort (the JVM may already be gone)
            pass

    def __del__(self) -> None:
        self.close()

    # -- shared pieces ---------------------------------------------------------------
    def _default_episode(self, seed: int | None) -> int:
        return 0 if seed is None else seed % max(len(self), 1)

    def _check_episode(self, episode: Any) -> int:
        try:
            i = operator.index(episode)
        except TypeError:
            raise InvalidInput(f"episode must be an integer (got {episode!r})") from None
        if not 0 <= i < len(self):
            raise InvalidInput(f"episode {i} is out of range: {self._episodes_phrase(i)}")
        return i

    def _episodes_phrase(self, episode: int) -> str:
        """What the out-of-range error says about the episodes there are."""
        return f"this split has {len(self)} {self.episode_unit}"

    def _step_after_end(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        raise InvalidInput(EPISODE_OVER)

    def _require_episode(self) -> int:
        if self._episode is None:
            raise InvalidInput(NOT_STARTED)
        return self._episode

    def _info(self) -> dict[str, Any]:
        won, score = self._outcome()
        return {
            "task": self.task,
            "admissible": self.admissible_actions(),
            "won": won,
            "score": score,
            **self._extra_info(),
        }


# -- options (they may arrive as strings from the command line: --opt key=value) ----


def int_option(name: str, value: Any, *, minimum: int | None = None) -> int:
    """``value`` as an int (``"5"`` -> 5), at least ``minimum``, or a clear error."""
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be an integer (got {value!r})") from None
    if minimum is not None and out < minimum:
        raise InvalidInput(f"{name} must be at least {minimum} (got {out})")
    return out


def names_option(value: str | Sequence[str] | None) -> list[str] | None:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]``; ``None`` / empty -> ``None``."""
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else list(value)
    return [n.strip() for n in names if n.strip()] or None
