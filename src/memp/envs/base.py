"""The environment protocol, in Gymnasium's reset/step shape.

An environment is a *suite* of episodes (games, task variations, queries) of one
split; ``reset(episode=i)`` starts episode ``i``. Environment-specific facts that the
executable-procedure mechanisms need (which verbs only move the agent, which are
no-ops, what an observation saying "that failed" looks like, where objects were seen)
live here, behind :class:`ActionSemantics`, never in the mechanisms.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


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


@runtime_checkable
class Env(Protocol):
    """One split of an environment; each episode is one task.

    ``reset`` returns ``(observation, info)``; ``step`` returns
    ``(observation, reward, terminated, truncated, info)``. ``info`` always carries
    ``task`` (str), ``admissible`` (list[str] or None when the env has no such list),
    ``won`` (bool) and ``score`` (float).
    """

    name: str  # "alfworld", "scienceworld", ...
    family: str  # prompt family: "household" | "science" | "cooking" | "travel" | "generic"
    split: str
    semantics: ActionSemantics

    def __len__(self) -> int: ...
    def reset(
        self, *, episode: int | None = None, seed: int | None = None
    ) -> tuple[str, dict[str, Any]]: ...
    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]: ...
    @property
    def task(self) -> str: ...
    def admissible_actions(self) -> list[str] | None: ...
    def expert_actions(self) -> list[str] | None:
        """The expert / gold action sequence for the current episode, where one exists."""
        ...

    def close(self) -> None: ...
