"""Online learning for executable memory: one update after each episode the agent played.

The paper's update policies (:mod:`memp.update`) applied to executable procedures:

- ``vanilla``: every won episode is compiled into a new procedure (they pile up; a
  lost one is kept only as a raw trajectory, since a program is never compiled from
  a failure).
- ``validation``: a won episode that ran a stored procedure as it is strengthens that
  procedure (its usage counts the success); a won episode that something else played
  (an adapted program, the LLM fallback, LLM recovery steps) is compiled into a new
  procedure, an adapted one with its provenance (``adapted_from``, ``adapted``).
- ``adjustment``: as validation, and a stored procedure that was followed and lost is
  revised: the LLM rewrites its program from the failure (the checked line format of
  :mod:`memp.skills.adapt`); the revision is stored as the next version (``parent_id``,
  ``version + 1``) and the old one is retired, so it stays in the lineage.
- ``erasure``: as validation, then a followed procedure whose record is poor is
  retired (:func:`memp.update.should_retire`); ``erase=True`` adds it to any policy.

Only :class:`memp.api.MemoryAPI` methods are used (``add_procedure``, ``record``,
``report``, ``retire``, ``get``, ``list``), so it works on ``Memory`` and ``Client``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from memp.errors import InvalidInput, MempError, NotFound, check_choice
from memp.types import Procedure, ProcedureStatus, Trajectory, Usage, new_id, now
from memp.update import should_retire

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics, Env
    from memp.llm.base import LLM

LEARN_POLICIES = ("vanilla", "validation", "adjustment", "erasure")


class LearnReport(BaseModel):
    """What one update did (procedure ids)."""

    policy: str
    added: list[str] = Field(default_factory=list)
    strengthened: list[str] = Field(default_factory=list)
    adjusted: dict[str, str] = Field(default_factory=dict)  # old id -> new version's id
    retired: list[str] = Field(default_factory=list)
    skipped: str | None = None  # why nothing was stored
    judged: bool | None = None  # the LLM judge's verdict, where the outcome was unknown


def followed(trajectory: Trajectory) -> list[str]:
    """The stored procedures the episode ran (an adapted program follows none)."""
    if trajectory.metadata.get("adapted"):
        return []
    return [str(p) for p in trajectory.metadata.get("retrieved") or []]


def _played_by_skill(trajectory: Trajectory) -> bool:
    return bool(trajectory.steps) and all(s.actor == "skill" for s in trajectory.steps)


def learn(
    memory: Any,
    trajectory: Trajectory,
    *,
    policy: str = "validation",
    semantics: ActionSemantics | None = None,
    env: Env | None = None,
    llm: LLM | None = None,
    record_usage: bool = True,
    erase: bool | None = None,
    min_retrieved: int = 3,
    threshold: float = 0.5,
    judge: LLM | None = None,
) -> LearnReport:
    """Update executable memory from one played episode (see the module docstring).

    ``semantics`` (or ``env``, whose episodes then replay-verify the distilled
    trajectory) compiles a won episode; ``llm`` revises a failed procedure
    (``adjustment``). ``record_usage=False`` when the caller counted the outcome on the
    followed procedures already (``Memory.report`` or ``Skill.finish``). An episode
    whose outcome is unknown (``success is None``: the environment reports no reward)
    is judged by ``judge`` (:func:`memp.judge.judge`) and learned from as judged.
    """
    from memp.build import build_executable

    check_choice("learning policy", policy, LEARN_POLICIES)
    if not isinstance(trajectory, Trajectory):
        raise InvalidInput(f"learn() takes a memp.Trajectory, got {type(trajectory).__name__}")
    semantics = semantics or getattr(env, "semantics", None)
    if semantics is None:
        raise InvalidInput(
            "learn() compiles episodes with the environment's action semantics: pass "
            "env=<a memp.envs environment> or semantics=<its ActionSemantics>"
        )
    report = LearnReport(policy=policy)
    if trajectory.success is None:
        if judge is None:
            raise InvalidInput(
                "the episode's outcome is unknown (success is None): set "
                "trajectory.success from the environment, or pass judge=<an LLM> to "
                "have it judged"
            )
        from memp.judge import judge as judge_outcome

        verdict = judge_outcome(judge, trajectory, example=won_example(memory, trajectory))
        report.judged = verdict.success
        trajectory = trajectory.model_copy(
            update={
                "success": verdict.success,
                "metadata": {**trajectory.metadata, "judged": verdict.success},
            }
        )
    ids = followed(trajectory)
    won = bool(trajectory.success)
    if record_usage and ids:
        live = [pid for pid in ids if _exists(memory, pid)]
        if live:
            memory.report(live, success=won)
    if won:
        if policy != "vanilla" and ids and _played_by_skill(trajectory):
            # the stored procedure did it alone: its record is the update
            report.strengthened = ids
        else:
            proc = build_executable(trajectory, semantics=semantics, env=env)
            adapted = trajectory.metadata.get("adapted") or {}
            meta = dict(proc.metadata)
            if adapted:
                meta.update(adapted=True, adapted_from=list(adapted.get("from") or []))
            meta["learned_from"] = trajectory.metadata.get("policy") or "episode"
            memory.record(trajectory)
            stored = memory.add_procedure(proc.model_copy(update={"metadata": meta}))
            report.added.append(stored.id)
    else:
        if policy == "vanilla":
            memory.record(trajectory)
        report.skipped = "the episode failed: no program is compiled from a failure"
        if policy == "adjustment" and llm is not None:
            for pid in ids:
                new = adjust(memory, pid, trajectory, semantics, llm)
                if new is not None:
                    report.adjusted[pid] = new
    if policy == "erasure" or erase:
        for pid in ids:
            if pid in report.adjusted:
                continue
            try:
                p = memory.get(pid)
            except NotFound:
                continue
            # a played episode is a retrieval even where nothing counted it as one
            u = p.usage
            usage = u.model_copy(update={"retrieved": max(u.retrieved, u.succeeded + u.failed)})
            if p.status == ProcedureStatus.ACTIVE and should_retire(
                usage, min_retrieved=min_retrieved, threshold=threshold
            ):
                memory.retire(pid)
                report.retired.append(pid)
    return report


def won_example(memory: Any, trajectory: Trajectory) -> Trajectory | None:
    """A won episode memory holds of the task nearest to ``trajectory``'s (the judge's
    worked example; never one a judge passed), or None."""
    try:
        hits = memory.retrieve(
            trajectory.task, k=3, environment=trajectory.environment, track=False
        )
    except MempError:  # a store it cannot search: judge without an example
        return None
    for h in hits:
        t = h.procedure.trajectory
        if t is None and h.procedure.source_trajectory_id:
            try:
                t = memory.get_trajectory(h.procedure.source_trajectory_id)
            except NotFound:
                t = None
        # a win the environment confirmed: one the judge itself passed proves nothing
        if t is not None and t.success and t.id != trajectory.id and "judged" not in t.metadata:
            return t
    return None


def _exists(memory: Any, pid: str) -> bool:
    try:
        memory.get(pid)
    except NotFound:
        return False
    return True


def adjust(
    memory: Any, procedure_id: str, trajectory: Trajectory, semantics: ActionSemantics, llm: LLM
) -> str | None:
    """Revise a procedure that was followed and failed; the new version's id, or None.

    The LLM rewrites the program with the failed one as its source and the step that
    failed named (the checked line format); a program the grammar refuses changes
    nothing. The revision keeps the template, drops the trajectories (the program is
    what runs now) and starts a fresh record.
    """
    from memp.skills.adapt import action_grammar, adapt_program

    try:
        old = memory.get(procedure_id)
    except NotFound:
        return None
    if old.program is None or not old.task_key:
        return None
    same_env = [p for p in memory.list(environment=old.environment) if p.program is not None]
    grammar = action_grammar(semantics, same_env, task_key=old.task_key, sources=[old])
    where = trajectory.metadata.get("stop") or "the program ended without success"
    note = f"{old.task_key}  (this program failed: {where})"
    out = adapt_program(llm, old.task_key, [_relabel(old, note)], grammar)
    if out.program is None or out.program.steps == old.program.steps:
        return None
    program = out.program.model_copy(update={"priors": old.program.priors})
    new = old.model_copy(
        update={
            "id": new_id(),
            "parent_id": old.id,
            "version": old.version + 1,
            "program": program,
            "trajectory": None,
            "usage": Usage(),
            "created_at": now(),
            "updated_at": now(),
            "metadata": {
                **old.metadata,
                "adjusted_from": old.id,
                "adjusted_after": trajectory.id,
                "adjusted_lines": out.lines,
            },
        }
    )
    stored = memory.add_procedure(new)
    memory.retire(old.id)
    return stored.id


def _relabel(p: Procedure, task_key: str) -> Procedure:
    return p.model_copy(update={"task_key": task_key})


def lineage(memory: Any, procedure_id: str) -> Sequence[Procedure]:
    """A procedure and the versions it revised (``parent_id``), newest first."""
    out: list[Procedure] = []
    pid: str | None = procedure_id
    while pid is not None:
        try:
            p = memory.get(pid)
        except NotFound:
            break
        out.append(p)
        pid = p.parent_id
    return out
