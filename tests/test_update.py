"""Update strategies: what each one stores, rewrites, retires or merges."""

from __future__ import annotations

import pytest

from memp.embed.hashing import HashEmbedder
from memp.llm.scripted import ScriptedLLM
from memp.memory import Memory
from memp.types import Outcome, ProcedureStatus, Step, Trajectory, Usage
from memp.update import should_retire

FIXED = "1. Find the {object}.\n2. Cool it with the fridge first.\n3. Put it in the {target}."


def traj(task: str, success: bool) -> Trajectory:
    return Trajectory(
        task=task,
        environment="alfworld",
        success=success,
        steps=[Step(action="take tomato 1", observation="You pick up the tomato 1.")],
    )


@pytest.fixture
def mem(tmp_path):
    llm = ScriptedLLM(lambda _: FIXED)
    m = Memory(tmp_path / "u.db", llm=llm, embedder=HashEmbedder(), facts="keywords")
    m.llm_calls = llm.calls
    yield m
    m.close()


def outcomes():
    return [
        Outcome(trajectory=traj("put a mug in cabinet", True)),
        Outcome(trajectory=traj("put a pen in drawer", False)),
    ]


def test_vanilla_adds_everything(mem):
    r = mem.update(outcomes(), strategy="vanilla", build_strategy="trajectory")
    assert len(r.added) == 2 and r.skipped == []
    assert sorted(p.task for p in mem.list()) == ["put a mug in cabinet", "put a pen in drawer"]


def test_validation_adds_only_successes(mem):
    r = mem.update(outcomes(), strategy="validation", build_strategy="trajectory")
    assert [mem.get(i).task for i in r.added] == ["put a mug in cabinet"]
    assert len(r.skipped) == 1 and mem.store.count() == 1


def test_adjustment_rewrites_the_procedure_that_led_to_failure(mem):
    old = mem.add(traj("cool a tomato and put it in microwave", True), strategy="trajectory")
    failed = traj("cool a tomato and put it in microwave", False)
    r = mem.update([Outcome(trajectory=failed, used=[old.id])], strategy="adjustment")
    assert r.adjusted == [old.id] and r.added == []
    cur = mem.get(old.id)
    assert cur.version == 2 and cur.script == FIXED
    assert cur.metadata["adjusted_after"] == failed.id
    hist = mem.history(old.id)
    assert [h.version for h in hist] == [1, 2] and hist[0].script is None
    assert "adjusted after failed trajectory" in hist[1].metadata["change_reason"]
    # The rewrite prompt showed the failed steps with their observations.
    assert "You pick up the tomato 1." in mem.llm_calls[-1][-1]["content"]
    assert cur.usage.failed == 1
    # Still retrievable (same task vector) and now carries the new text.
    assert "Cool it with the fridge first" in mem.render(mem.retrieve("cool a tomato", k=1))


def test_erasure_retires_by_hit_rule(mem):
    bad = mem.add(traj("put a pen in drawer", True), strategy="trajectory")
    good = mem.add(traj("put a mug in cabinet", True), strategy="trajectory")
    for i in range(3):
        mem.retrieve("put a pen in drawer", k=1)
        mem.retrieve("put a mug in cabinet", k=1)
        r = mem.update(
            [
                # Variants of the tasks: successes are added and must not shadow the originals.
                Outcome(trajectory=traj(f"put pen {i} in drawer", i == 0), used=[bad.id]),
                Outcome(trajectory=traj(f"put mug {i} in cabinet", i != 0), used=[good.id]),
            ],
            strategy="erasure",
            build_strategy="trajectory",
        )
    assert r.retired == [bad.id]
    assert mem.get(bad.id).status == ProcedureStatus.RETIRED
    assert mem.get(good.id).status == ProcedureStatus.ACTIVE
    assert mem.get(bad.id).usage.retrieved == 3
    assert bad.id not in [h.procedure.id for h in mem.retrieve("put a pen in drawer", k=10)]


def test_erasure_rules():
    u = Usage(retrieved=3, succeeded=1, failed=2)
    assert should_retire(u)
    assert not should_retire(u, min_retrieved=4)
    assert not should_retire(Usage(retrieved=5))  # no evidence yet
    # Beta(1,1) posterior mean of 1/3 successes is 0.4; a prior of (3,1) lifts it to 4/7.
    assert should_retire(u, rule="beta")
    assert not should_retire(u, rule="beta", prior=(3.0, 1.0))


def test_merge_folds_near_duplicates(mem):
    first = mem.add(traj("put a clean mug in the cabinet", True), strategy="trajectory")
    r = mem.update(
        [
            Outcome(trajectory=traj("put a clean mug in the cabinet", True)),
            Outcome(trajectory=traj("heat an egg", True)),
        ],
        strategy="merge",
        build_strategy="trajectory",
    )
    assert list(r.merged) == [first.id] and len(r.added) == 1
    assert mem.store.count() == 2
    cur = mem.get(first.id)
    assert cur.version == 2 and len(cur.metadata["merged_from"]) == 1


def test_merge_duplicates_sweep_keeps_the_best_record(mem):
    a = mem.add(traj("put a clean mug in the cabinet", True), strategy="trajectory")
    b = mem.add(traj("put a clean mug in the cabinet", True), strategy="trajectory")
    mem.report([b.id], success=True)
    mem.add(traj("heat an egg", True), strategy="trajectory")
    r = mem.merge_duplicates(threshold=0.95)
    assert r.merged == {b.id: [a.id]}
    assert mem.get(a.id).status == ProcedureStatus.RETIRED
    assert mem.get(a.id).metadata["merged_into"] == b.id
    assert mem.store.count() == 2
