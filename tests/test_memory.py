"""Memory orchestration over a real SQLite file (scripted LLM, hashing embedder)."""

from __future__ import annotations

import json

import pytest

from memp.embed.hashing import HashEmbedder
from memp.errors import DimensionMismatch, InvalidInput, MissingData, UnknownOption
from memp.llm.scripted import ScriptedLLM
from memp.memory import Memory
from memp.types import ProcedureStatus, Step, Trajectory

SCRIPT = "1. Find the {object} and take it.\n2. Go to the {target}.\n3. Put the {object} in the {target}."


def traj(task: str, env: str = "alfworld", success: bool = True, **md) -> Trajectory:
    return Trajectory(
        task=task,
        environment=env,
        success=success,
        steps=[Step(action="go to countertop 1"), Step(action=f"take {task.split()[-1]} 1")],
        metadata=md,
    )


@pytest.fixture
def mem(tmp_path):
    m = Memory(
        tmp_path / "m.db",
        llm=ScriptedLLM(lambda _: SCRIPT),
        embedder=HashEmbedder(),
        facts="keywords",
    )
    yield m
    m.close()


@pytest.mark.parametrize(
    ("strategy", "has_script", "has_traj"),
    [("trajectory", False, True), ("script", True, False), ("proceduralization", True, True)],
)
def test_build_strategies_store_what_they_say(mem, strategy, has_script, has_traj):
    t = traj("put a clean apple in fridge", entities={"object": "apple", "target": "fridge"})
    p = mem.add(t, strategy=strategy)
    stored = mem.get(p.id)
    assert stored.build == strategy
    assert (stored.script == SCRIPT) is has_script
    assert (stored.trajectory is not None) is has_traj
    if has_traj:
        assert stored.trajectory.actions == t.actions
    assert stored.task_key == "put a clean {object} in {target}"
    assert stored.facts == ["clean", "apple", "fridge"]
    assert len(stored.embedding) == 384 and len(stored.fact_embeddings) == 3
    assert stored.source_trajectory_id == t.id
    assert mem.store.get_trajectory(t.id).task == t.task


def test_script_prompt_is_of_the_environment_family(tmp_path):
    llm = ScriptedLLM(lambda _: SCRIPT)
    m = Memory(tmp_path / "m.db", llm=llm, embedder=HashEmbedder(), facts="keywords")
    m.add(traj("boil water", env="scienceworld"), strategy="script")
    m.add(traj("put a mug in cabinet"), strategy="script")
    science, household = (c[-1]["content"] for c in llm.calls)
    assert "Task: boil water" in science and "focus on water" in science
    assert "put apple 1 in/on fridge 1" not in science
    assert "put apple 1 in/on fridge 1" in household and "FlightSearch" not in household


def test_unknown_strategy_names_list_valid_ones(mem):
    with pytest.raises(UnknownOption, match="valid choices: proceduralization, script, trajectory"):
        mem.add(traj("x y"), strategy="scripts")
    with pytest.raises(UnknownOption, match="avefact, hybrid, query, random"):
        mem.retrieve("x", strategy="bm25")
    with pytest.raises(UnknownOption, match="adjustment, erasure, merge, validation, vanilla"):
        mem.update([], strategy="prune")


def test_embedder_dimension_mismatch_is_refused(tmp_path):
    path = tmp_path / "m.db"
    with Memory(path, embedder=HashEmbedder(384)) as m:
        m.add(traj("put a mug in cabinet"), strategy="trajectory")
    with pytest.raises(DimensionMismatch, match=r"384-dimensional.*use the embedder"):
        Memory(path, embedder=HashEmbedder(128))


def test_retired_is_never_retrieved_but_stays_inspectable(mem):
    p = mem.add(traj("put a mug in cabinet"), strategy="trajectory")
    assert [h.procedure.id for h in mem.retrieve("put a mug in cabinet")] == [p.id]
    mem.retire(p.id)
    for s in ("random", "query", "avefact", "hybrid"):
        assert mem.retrieve("put a mug in cabinet", strategy=s) == []
    assert mem.get(p.id).status == ProcedureStatus.RETIRED
    assert [x.id for x in mem.list(status=ProcedureStatus.RETIRED)] == [p.id]


def test_namespaces_are_isolated(tmp_path):
    a = Memory(tmp_path / "m.db", embedder=HashEmbedder(), namespace="a")
    b = Memory(tmp_path / "m.db", embedder=HashEmbedder(), namespace="b")
    pa = a.add(traj("put a mug in cabinet"), strategy="trajectory")
    assert b.retrieve("put a mug in cabinet") == []
    assert [h.procedure.id for h in a.retrieve("put a mug in cabinet")] == [pa.id]
    with pytest.raises(KeyError):
        b.get(pa.id)


def test_retrieve_counts_retrieved_and_report_counts_outcomes(mem):
    p = mem.add(traj("put a mug in cabinet"), strategy="trajectory")
    mem.retrieve("put a mug in cabinet")
    mem.retrieve("put a mug in cabinet", track=False)
    mem.report([p.id], success=True)
    mem.report([p.id], success=False)
    u = mem.get(p.id).usage
    assert (u.retrieved, u.succeeded, u.failed) == (1, 1, 1)


def test_malformed_trajectory_file_names_line_and_field(tmp_path):
    from memp.build import read_trajectories

    good = traj("put a mug in cabinet").model_dump_json()
    bad = json.dumps({"task": "x", "steps": [{"observation": "no action here"}]})
    f = tmp_path / "t.jsonl"
    f.write_text(good + "\n" + bad + "\n")
    with pytest.raises(InvalidInput, match=r"line 2: invalid trajectory: field 'steps.0.action'"):
        list(read_trajectories(f))
    f2 = tmp_path / "t.json"
    f2.write_text(json.dumps([json.loads(good), {"task": "y", "sucess": True}]))
    with pytest.raises(InvalidInput, match=r"record 2: .*field 'sucess'"):
        list(read_trajectories(f2))
    with pytest.raises(MissingData):
        list(read_trajectories(tmp_path / "nope.json"))


def test_script_strategy_without_model_says_what_to_do(tmp_path, monkeypatch):
    m = Memory(tmp_path / "m.db", embedder=HashEmbedder())
    m._llm = None
    monkeypatch.setattr(m, "llm_required", lambda why: (_ for _ in ()).throw(InvalidInput(why)))
    with pytest.raises(InvalidInput, match="script"):
        m.add(traj("put a mug in cabinet"), strategy="script")


def test_export_import_round_trip_is_exact(mem, tmp_path):
    p = mem.add(traj("put a clean apple in fridge"), strategy="proceduralization")
    mem.add(traj("heat an egg", env="scienceworld"), strategy="trajectory")
    mem.store.update(mem.get(p.id).model_copy(update={"script": "1. New."}), reason="edit")
    mem.retire(p.id)
    mem.retrieve("heat an egg")
    out1, out2 = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    n = mem.export_jsonl(out1)
    with Memory(tmp_path / "copy.db", embedder=HashEmbedder()) as copy:
        assert copy.import_jsonl(out1) == n
        copy.export_jsonl(out2)
        assert out1.read_bytes() == out2.read_bytes()
        assert copy.get(p.id) == mem.get(p.id)
        assert copy.history(p.id) == mem.history(p.id)
        with pytest.raises(InvalidInput, match="already exists"):
            copy.import_jsonl(out1)
