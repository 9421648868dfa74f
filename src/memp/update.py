"""Update strategies: keep procedural memory correct as outcomes come in.

- ``vanilla``: add a procedure for every trajectory; one from a failed trajectory is
  kept as a failed attempt and rendered apart from what worked (:func:`memp.build.builds`).
- ``validation``: add only successful trajectories.
- ``adjustment``: as validation, and a retrieved procedure that was followed on a task
  that then failed is rewritten by the LLM from the failed trajectory (a new version;
  the old text stays in its history).
- ``erasure``: as validation, then retire procedures whose record after retrieval is
  poor: by default retrieved >= 3 times with success rate < 0.5 (the paper's rule);
  ``rule="beta"`` uses the posterior mean of a Beta(a, b) prior instead.
- ``merge``: as validation, but a new procedure whose task embedding is within the
  cosine ``threshold`` of an existing one is folded into it instead of piling up.

Every strategy first records usage from the outcomes (``record_usage=False`` to skip,
e.g. when the agent already called :meth:`Memory.report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from memp.build import adjust_script, is_failure
from memp.errors import InvalidInput, NotFound, check_choice
from memp.types import Outcome, Procedure, ProcedureStatus, Usage

if TYPE_CHECKING:
    from memp.memory import Memory

UPDATE_STRATEGIES = ("vanilla", "validation", "adjustment", "erasure", "merge")
ERASURE_RULES = ("hits", "beta")


class UpdateReport(BaseModel):
    """What an update did, by procedure id."""

    strategy: str
    added: list[str] = Field(default_factory=list)
    adjusted: list[str] = Field(default_factory=list)
    retired: list[str] = Field(default_factory=list)
    merged: dict[str, list[str]] = Field(default_factory=dict)  # survivor -> absorbed
    skipped: list[str] = Field(default_factory=list)  # trajectory ids not turned into memory


def should_retire(
    usage: Usage,
    *,
    rule: str = "hits",
    min_retrieved: int = 3,
    threshold: float = 0.5,
    prior: tuple[float, float] = (1.0, 1.0),
) -> bool:
    """The erasure rule. No reported outcome yet means no evidence: never retire."""
    check_choice("erasure rule", rule, ERASURE_RULES)
    done = usage.succeeded + usage.failed
    if usage.retrieved < min_retrieved or done == 0:
        return False
    if rule == "hits":
        return usage.succeeded / done < threshold
    a, b = prior
    return (usage.succeeded + a) / (done + a + b) < threshold


def apply_update(
    memory: Memory,
    outcomes: Sequence[Outcome],
    *,
    strategy: str = "validation",
    build_strategy: str = "proceduralization",
    record_usage: bool = True,
    rule: str = "hits",
    min_retrieved: int = 3,
    threshold: float | None = None,
    prior: tuple[float, float] = (1.0, 1.0),
    sweep: bool = False,
) -> UpdateReport:
    """See the module docstring. ``threshold`` is the success-rate cut for ``erasure``
    (default 0.5) and the cosine cut for ``merge`` (default 0.95)."""
    check_choice("update strategy", strategy, UPDATE_STRATEGIES)
    if strategy == "erasure":
        check_choice("erasure rule", rule, ERASURE_RULES)
    for i, o in enumerate(outcomes):
        if not isinstance(o, Outcome):
            raise InvalidInput(f"outcome {i} is a {type(o).__name__}, expected memp.Outcome")
    report = UpdateReport(strategy=strategy)
    if record_usage:
        for o in outcomes:
            for pid in dict.fromkeys(o.used):
                try:
                    memory.report([pid], success=bool(o.trajectory.success))
                except NotFound:
                    continue  # a procedure retrieved then deleted elsewhere: nothing to count
    adjusted: set[str] = set()
    for o in outcomes:
        t = o.trajectory
        if strategy == "vanilla" or t.success:
            if strategy == "merge":
                merge_in(
                    memory, o, threshold if threshold is not None else 0.95, build_strategy, report
                )
            else:
                kept = memory.add(t, strategy=build_strategy, keep_failed=strategy == "vanilla")
                report.added.append(kept.id)
            continue
        report.skipped.append(t.id)
        if strategy == "adjustment" and t.success is False:
            for pid in o.followed if o.followed is not None else o.used:
                if pid in adjusted:
                    continue  # one rewrite per procedure per update round
                if adjust_one(memory, pid, o):
                    adjusted.add(pid)
                    report.adjusted.append(pid)
    if strategy == "erasure":
        ids = (
            [p.id for p in memory.list()]
            if sweep
            else list(dict.fromkeys(pid for o in outcomes for pid in o.used))
        )
        cut = threshold if threshold is not None else 0.5
        for pid in ids:
            try:
                p = memory.get(pid)
            except NotFound:
                continue
            if p.status == ProcedureStatus.ACTIVE and should_retire(
                p.usage, rule=rule, min_retrieved=min_retrieved, threshold=cut, prior=prior
            ):
                memory.retire(pid)
                report.retired.append(pid)
    return report


def adjust_one(memory: Memory, procedure_id: str, outcome: Outcome) -> bool:
    try:
        p = memory.get(procedure_id)
    except NotFound:
        return False
    script = adjust_script(memory.llm_required("adjustment"), p, outcome.trajectory)
    if script is None:
        return False
    meta = {**p.metadata, "adjusted_after": outcome.trajectory.id}
    memory.store.update(
        p.model_copy(
            update={
                "script": script,
                "metadata": meta,
                "embedding": None,
                "key_embedding": None,
                "fact_embeddings": [],
            }
        ),
        reason=f"adjusted after failed trajectory {outcome.trajectory.id}",
    )
    return True


def merge_in(
    memory: Memory, outcome: Outcome, threshold: float, build_strategy: str, report: UpdateReport
) -> None:
    t = outcome.trajectory
    new = memory.build(t, strategy=build_strategy)
    assert new.embedding is not None
    near = memory.store.search(
        np.asarray(new.embedding, dtype=np.float32),
        kind="task",
        k=1,
        namespace=memory.namespace,
        environment=t.environment,
    )
    if near and near[0][1] >= threshold:
        survivor = memory.get(near[0][0])
        memory.record(t)
        _absorb(memory, survivor, [new], report, reason=f"merged trajectory {t.id}")
        report.merged.setdefault(survivor.id, []).append(new.id)
        return
    memory.record(t)
    report.added.append(memory.add_procedure(new).id)


def _absorb(
    memory: Memory,
    survivor: Procedure,
    others: Sequence[Procedure],
    report: UpdateReport,
    reason: str,
) -> None:
    facts = list(survivor.facts)
    merged: list[Any] = list(survivor.metadata.get("merged_from", []))
    for o in others:
        facts.extend(f for f in o.facts if f not in facts)
        merged.append(o.source_trajectory_id or o.id)
    memory.store.update(
        survivor.model_copy(
            update={
                "facts": facts,
                "metadata": {**survivor.metadata, "merged_from": merged},
                "embedding": None,
                "key_embedding": None,
                # Re-embed facts so merged-in facts become searchable.
                "fact_embeddings": memory.embedder.embed(facts).tolist() if facts else [],
            }
        ),
        reason=reason,
    )


def merge_duplicates(memory: Memory, threshold: float = 0.95) -> UpdateReport:
    """Fold near-duplicate active procedures (task cosine >= threshold, same environment)
    into the one with the best record; the others are retired, marked ``merged_into``."""
    report = UpdateReport(strategy="merge")
    gone: set[str] = set()
    for listed in memory.list():
        if listed.id in gone:
            continue
        p = memory.get(listed.id)  # with its vectors
        if p.id in gone or p.embedding is None:
            continue
        near = memory.store.search(
            np.asarray(p.embedding, dtype=np.float32),
            kind="task",
            k=10,
            namespace=memory.namespace,
            environment=p.environment,
        )
        group = [memory.get(pid) for pid, s in near if s >= threshold and pid not in gone]
        # A failed attempt and a success are not duplicates: one would hide the other.
        group = [q for q in group if is_failure(q) == is_failure(p)]
        if len(group) < 2:
            continue
        group.sort(key=lambda q: (-(q.usage.succeeded - q.usage.failed), q.created_at))
        survivor, others = group[0], group[1:]
        _absorb(
            memory,
            survivor,
            others,
            report,
            reason="merged near-duplicates " + ", ".join(o.id for o in others),
        )
        for o in others:
            memory.store.update(
                o.model_copy(
                    update={
                        "metadata": {**o.metadata, "merged_into": survivor.id},
                        "embedding": None,
                        "key_embedding": None,
                        "fact_embeddings": [],
                    }
                ),
                reason=f"merged into {survivor.id}",
            )
            memory.retire(o.id)
            u = o.usage
            memory.store.record_usage(
                survivor.id,
                retrieved=u.retrieved,
                succeeded=u.succeeded,
                failed=u.failed,
                namespace=memory.namespace,
            )
            gone.add(o.id)
        gone.add(survivor.id)
        report.merged[survivor.id] = [o.id for o in others]
    return report
