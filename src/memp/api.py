"""MemoryAPI: what a procedural memory offers, in this process or behind the service.

:class:`memp.Memory` runs the lifecycle over a local store; :class:`memp.Client` asks a
memory service for the same over HTTP. Both satisfy :class:`MemoryAPI`, so code written
against it (an agent loop, an update policy, a notebook) runs on either. What the two
share lives here once, as httpx keeps it in ``BaseClient`` under ``Client`` and
``AsyncClient``:

- the surface itself: every signature and default is stated in :class:`MemoryAPI`;
  a remote implementation takes it with :func:`takes` instead of restating it;
- the argument checks (:func:`check_build`, :func:`check_retrieve`,
  :func:`check_update_options`): a bad argument is refused with the same error before
  anything is sent or stored;
- rendering and the context manager (:class:`BaseMemory`).

Besides the protocol, ``Memory`` has what only a local memory can have (its store, its
models, ``stats()``); ``Client`` has ``namespace`` (asked of the server, so it is not part
of the protocol: an ``isinstance`` check must not make a request).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    runtime_checkable,
)

from memp.errors import InvalidInput, check_choice
from memp.types import Outcome, Procedure, ProcedureStatus, RetrievalHit, Trajectory

if TYPE_CHECKING:  # memp.update works against this module: no import cycle at run time
    from memp.envs.base import ActionSemantics, Env
    from memp.llm.base import LLM
    from memp.skills.handle import Skill
    from memp.skills.learn import LearnReport
    from memp.skills.runtime import ExecConfig
    from memp.update import UpdateReport

__all__ = [
    "BaseMemory",
    "MemoryAPI",
    "check_build",
    "check_retrieve",
    "check_skill",
    "check_update_options",
    "takes",
]


@runtime_checkable
class MemoryAPI(Protocol):
    """Procedural memory: build procedures from trajectories, retrieve them for a new
    task, keep them correct from outcomes, inspect and move them."""

    # -- build ------------------------------------------------------------------

    def build(
        self,
        trajectory: Trajectory,
        *,
        strategy: str = "proceduralization",
        task_key: str | None = None,
        keep_failed: bool = False,
        env: Env | None = None,
        semantics: ActionSemantics | None = None,
    ) -> Procedure:
        """Build a procedure (with embeddings) without storing it. A failed trajectory
        is refused unless ``keep_failed``: see :func:`memp.build.builds`. Strategy
        ``executable`` needs ``env`` or its ``semantics`` (in this process only)."""
        ...

    def record(self, trajectory: Trajectory) -> None:
        """Store the raw trajectory (the material procedures are built from)."""
        ...

    def add(
        self,
        trajectory: Trajectory,
        *,
        strategy: str = "proceduralization",
        task_key: str | None = None,
        keep_failed: bool = False,
        env: Env | None = None,
        semantics: ActionSemantics | None = None,
    ) -> Procedure:
        """Build a procedure from ``trajectory`` and store both (a failed trajectory
        only with ``keep_failed``; ``env`` / ``semantics`` as for :meth:`build`)."""
        ...

    def add_procedure(self, procedure: Procedure) -> Procedure:
        """Store a ready-made procedure in this memory's namespace."""
        ...

    # -- retrieve ---------------------------------------------------------------

    def retrieve(
        self,
        task: str,
        *,
        strategy: str = "query",
        k: int = 3,
        min_score: float = 0.0,
        budget_tokens: int | None = None,
        environment: str | None = None,
        task_key: str | None = None,
        track: bool = True,
    ) -> list[RetrievalHit]:
        """The best active procedures for ``task``: at most ``k``, cosine at least
        ``min_score``, rendered within ``budget_tokens``; ``track`` counts them as
        retrieved (feeds erasure)."""
        ...

    def render(self, hits: Sequence[RetrievalHit]) -> str:
        """The hits as a prompt block of guidelines."""
        ...

    # -- execute ----------------------------------------------------------------

    def skill(
        self,
        task: str,
        *,
        environment: str | None = None,
        semantics: ActionSemantics | None = None,
        env: Env | None = None,
        config: ExecConfig | None = None,
        handover_when_stuck: bool = False,
        track: bool = True,
        adapt: bool = False,
        admissible: Sequence[str] | None = None,
    ) -> Skill | None:
        """A runnable :class:`~memp.skills.handle.Skill` for ``task`` from the executable
        procedures of its template, or None when no stored template matches. The caller
        steps its own environment with ``next_action`` and ends with ``finish(success)``,
        which counts the outcome on the procedures. ``env`` gives the environment's name
        (and, in this process, its semantics); otherwise pass ``environment`` (and, to a
        local memory, ``semantics``). ``track``: count the procedures as retrieved.
        ``adapt``: where no template matches, the memory's LLM writes the task's program
        from the nearest stored ones, checked against the action grammar (``admissible``:
        the episode's first admissible actions); ``skill.adapted`` records it."""
        ...

    def learn(
        self,
        trajectory: Trajectory,
        *,
        policy: str = "validation",
        env: Env | None = None,
        semantics: ActionSemantics | None = None,
        llm: LLM | None = None,
        judge: LLM | None = None,
        record_usage: bool = True,
    ) -> LearnReport:
        """Update executable memory from one played episode (:mod:`memp.skills.learn`)."""
        ...

    # -- update -----------------------------------------------------------------

    def update(
        self, outcomes: Sequence[Outcome], *, strategy: str = "validation", **options: Any
    ) -> UpdateReport:
        """Apply an update strategy to a group of outcomes (:mod:`memp.update`)."""
        ...

    def report(self, procedure_ids: Iterable[str], *, success: bool) -> None:
        """Count one success or failure for each procedure that was used."""
        ...

    def merge_duplicates(self, threshold: float = 0.95) -> UpdateReport:
        """Consolidate near-duplicate procedures (task cosine >= ``threshold``)."""
        ...

    # -- inspect ----------------------------------------------------------------

    def get(self, procedure_id: str) -> Procedure: ...

    def list(
        self,
        *,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Procedure]:
        """Procedures oldest first; ``status=None``: every status."""
        ...

    def count(
        self,
        *,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
    ) -> int: ...

    def history(self, procedure_id: str) -> list[Procedure]:
        """Every version of a procedure, oldest first."""
        ...

    def get_trajectory(self, trajectory_id: str) -> Trajectory: ...

    def list_trajectories(
        self, *, environment: str | None = None, limit: int | None = None
    ) -> list[Trajectory]: ...

    def retire(self, procedure_id: str) -> Procedure:
        """Stop a procedure from being retrieved (it stays, with its history)."""
        ...

    # -- export / import --------------------------------------------------------

    def export_jsonl(self, path: str | Path) -> int:
        """Write every record of the namespace as JSON lines; returns the line count."""
        ...

    def import_jsonl(self, path: str | Path, *, replace: bool = False) -> int:
        """Load a file written by :meth:`export_jsonl`; returns the record count."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


# -- the shared checks --------------------------------------------------------------


def check_build(trajectory: Trajectory, strategy: str) -> None:
    from memp.build import BUILD_STRATEGIES

    check_choice("build strategy", strategy, BUILD_STRATEGIES)
    if not isinstance(trajectory, Trajectory):
        raise InvalidInput(f"build() takes a memp.Trajectory, got {type(trajectory).__name__}")


def check_retrieve(strategy: str, k: int, budget_tokens: int | None) -> None:
    from memp.retrieve import RETRIEVE_STRATEGIES

    check_choice("retrieve strategy", strategy, RETRIEVE_STRATEGIES)
    if k < 1:
        raise InvalidInput(f"k must be >= 1, got {k}")
    if budget_tokens is not None and budget_tokens < 1:
        raise InvalidInput(f"budget_tokens must be >= 1, got {budget_tokens}")


def check_skill(task: Any) -> None:
    if not isinstance(task, str) or not task.strip():
        raise InvalidInput("skill() takes the task as a non-empty string")


def check_update_options(options: Iterable[str]) -> None:
    """Refuse options :func:`memp.update.apply_update` does not take (a misspelt option
    must not be silently ignored)."""
    from memp.update import apply_update

    valid = [
        n
        for n, prm in inspect.signature(apply_update).parameters.items()
        if prm.kind == prm.KEYWORD_ONLY and n != "strategy"
    ]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InvalidInput(
            f"unknown update option(s): {', '.join(unknown)}; valid: {', '.join(valid)}"
        )


# -- the shared behaviour -------------------------------------------------------------


class BaseMemory:
    """What every :class:`MemoryAPI` implementation does the same way."""

    def render(self, hits: Sequence[RetrievalHit]) -> str:
        from memp.retrieve import render

        return render(hits)

    def learn(
        self,
        trajectory: Trajectory,
        *,
        policy: str = "validation",
        env: Env | None = None,
        semantics: ActionSemantics | None = None,
        llm: LLM | None = None,
        judge: LLM | None = None,
        record_usage: bool = True,
    ) -> LearnReport:
        """Update executable memory from one played episode: a win compiles into (or
        strengthens) a procedure, a followed procedure that lost is revised (policy
        ``adjustment``, with ``llm``; the revision is its next version) or retired
        (``erasure``). An episode with no known outcome is judged by ``judge``.
        ``record_usage=False`` when :meth:`Skill.finish` already counted the outcome.
        It runs in this process (replaying a win on ``env``) against this memory's
        methods, so a service's memory learns the same way. See :mod:`memp.skills.learn`."""
        from memp.skills.learn import learn

        return learn(
            self,
            trajectory,
            policy=policy,
            semantics=semantics,
            env=env,
            llm=llm,
            judge=judge,
            record_usage=record_usage,
        )

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


def takes(
    spec: Callable[Concatenate[Any, P], R],
) -> Callable[[Callable[[S, dict[str, Any]], R]], Callable[Concatenate[S, P], R]]:
    """Give the decorated method the signature and docstring of ``spec`` (a
    :class:`MemoryAPI` method); its body receives the call's arguments by name, defaults
    filled in. A second implementation of the surface thus states only what it does."""
    sig = inspect.signature(spec)
    first = next(iter(sig.parameters))

    def decorate(body: Callable[[S, dict[str, Any]], R]) -> Callable[Concatenate[S, P], R]:
        def method(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                call = sig.bind(self, *args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{spec.__name__}(): {exc}") from None
            call.apply_defaults()
            arguments = dict(call.arguments)
            del arguments[first]
            return body(self, arguments)

        functools.update_wrapper(method, body, updated=())
        method.__doc__ = body.__doc__ or spec.__doc__
        method.__signature__ = sig  # type: ignore[attr-defined]
        return method

    return decorate
