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
    with pytest.raises(UnknownOption, match="valid choices: executable, proceduralization, script, trajectory"):
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


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "m.db")
    return request.getfixturevalue("postgres_url")


def test_embedders_of_the_same_dimension_are_not_mixed(location, local_embedder):
    """hash:384 and MiniLM both give 384 dims: the store records which one it holds."""
    from memp.errors import EmbedderMismatch

    with Memory(location, embedder=HashEmbedder(384)) as m:
        m.add(traj("put a mug in cabinet"), strategy="trajectory")
        assert m.store.embedder_identity == {"name": "hash:384", "dim": 384}
    with pytest.raises(EmbedderMismatch, match=r"hash:384.*--embedder hash:384.*new store"):
        Memory(location, embedder=local_embedder)
    with Memory(location, embedder=HashEmbedder(384)) as m:  # the right one still opens it
        assert len(m.retrieve("put a mug in cabinet")) == 1


def test_a_store_without_a_recorded_embedder_adopts_the_first_one(
    location, local_embedder, tmp_path
):
    from memp.errors import EmbedderMismatch
    from memp.store import open_store

    # a store written before identities were recorded: vectors, no identity
    with Memory(location, embedder=HashEmbedder(384)) as m:
        p = m.build(traj("put a mug in cabinet"), strategy="trajectory")
    s = open_store(location)
    s.add([p])
    assert s.embedder_identity is None
    s.close()
    with Memory(location, embedder=local_embedder) as m:  # the first to open it
        assert m.store.embedder_identity == {"name": local_embedder.name, "dim": 384}
    with pytest.raises(EmbedderMismatch, match="local"):
        Memory(location, embedder=HashEmbedder(384))
    # an empty store records nothing until something is written to it
    with Memory(tmp_path / "empty.db", embedder=HashEmbedder()) as m:
        assert m.retrieve("put a mug in cabinet") == []
        assert m.store.embedder_identity is None


def test_a_failed_trajectory_is_not_built_unless_kept_and_then_reads_as_a_caution(mem):
    from memp.retrieve import HEADER

    lost = traj("put a hot mug in cabinet", success=False)
    with pytest.raises(InvalidInput, match=r"failed.*keep_failed=True"):
        mem.add(lost, strategy="trajectory")
    with pytest.raises(InvalidInput, match="failed"):
        mem.build(lost, strategy="trajectory")
    assert mem.count(status=None) == 0 and mem.list_trajectories() == []  # nothing stored
    kept = mem.add(lost, strategy="trajectory", keep_failed=True)
    assert kept.metadata["source_success"] is False
    won = mem.add(traj("put a cold mug in cabinet"), strategy="trajectory")
    hits = mem.retrieve("put a mug in cabinet", k=2)
    assert {h.procedure.id for h in hits} == {kept.id, won.id}
    block = mem.render(hits)
    worked, _, failed = block.partition("failed")
    assert block.startswith(HEADER)
    assert "put a cold mug" in worked and "put a hot mug" not in worked
    assert "put a hot mug" in failed and "avoid" in block
    # only failures: no "worked" heading at all
    only = mem.render([h for h in hits if h.procedure.id == kept.id])
    assert HEADER not in only and "put a hot mug" in only
    # no recorded outcome counts as a demonstration, not a failure
    assert mem.add(traj("put a mug in shelf", success=None), strategy="trajectory")


def test_vanilla_keeps_failures_as_cautions_validation_skips_them(mem):
    from memp.types import Outcome

    lost = traj("put a hot mug in cabinet", success=False)
    won = traj("put a cold mug in cabinet")
    rep = mem.update(
        [Outcome(trajectory=won), Outcome(trajectory=lost)],
        strategy="validation",
        build_strategy="trajectory",
    )
    assert len(rep.added) == 1 and rep.skipped == [lost.id]
    rep = mem.update([Outcome(trajectory=lost)], strategy="vanilla", build_strategy="trajectory")
    assert len(rep.added) == 1
    p = mem.get(rep.added[0])
    assert p.metadata["source_success"] is False
    assert "failed" in mem.render(mem.retrieve("put a hot mug in cabinet", k=1))


def test_cli_memory_add_follows_the_same_rule(tmp_path):
    from typer.testing import CliRunner

    from memp.cli import app

    f = tmp_path / "t.jsonl"
    f.write_text(
        "\n".join(
            traj(task, success=ok).model_dump_json()
            for task, ok in (("put a mug in cabinet", True), ("put a pan in cabinet", False))
        )
    )
    db = str(tmp_path / "m.db")
    args = ["memory", "add", str(f), "-s", "trajectory", "--db", db, "--embedder", "hash"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "added 1 procedure(s) from 2" in out.output
    with Memory(db, embedder=HashEmbedder()) as m:
        assert [p.task for p in m.list()] == ["put a mug in cabinet"]
