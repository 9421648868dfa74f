"""TravelPlanner memory on the real database: k-fold cross-validation never puts the
tested query in its memory, the tool-use procedure compiled from gold trajectories plays
real queries, the assembler's plans for held-out queries pass the evaluator, and the
agent never sees the verdict (nor the gold plan) before it submits."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from memp.envs import make_env
from memp.envs.travelplanner import TravelPlannerEnv
from memp.envs.travelplanner.assemble import (
    TravelPlannerSkill,
    compile_procedure,
    table_rows,
)
from memp.errors import InvalidInput
from memp.policies import ExpertPolicy

SHARED = Path(__file__).resolve().parents[3] / "shared" / "travelplanner"
pytestmark = pytest.mark.skipif(
    not (SHARED / "train_gold_plans.jsonl").is_file(), reason="no ../shared/travelplanner"
)


@pytest.fixture(scope="module")
def env() -> TravelPlannerEnv:
    return make_env("travelplanner", "train", db_dir=SHARED / "database",
                    queries=SHARED / "train_gold_plans.jsonl")  # fmt: skip


@pytest.fixture(scope="module")
def gold(env: TravelPlannerEnv) -> list[Any]:
    return [ExpertPolicy().run(env, i) for i in range(len(env))]


class _Memory:
    """Stored procedures as the skill reads them (memory.list), for the policy alone."""

    def __init__(self, trajectories: list[Any]) -> None:
        self.items = [
            SimpleNamespace(task=t.task, trajectory=t, id=f"p{i}")
            for i, t in enumerate(trajectories)
        ]

    def list(self, environment: str | None = None) -> list[Any]:
        return list(self.items)


def _held_out(gold: list[Any], test: int, folds: int = 5) -> _Memory:
    return _Memory([t for i, t in enumerate(gold) if i % folds != test % folds])


def test_compiled_procedure_has_the_query_slots_and_day_layouts(env, gold) -> None:
    proc = compile_procedure([(t.task, [s.action for s in t.steps]) for t in gold[5:]],
                             env.db.city_state)  # fmt: skip
    assert proc.city_search  # multi-city trips look up the state's cities first
    assert set(proc.city_tools) == {"AccommodationSearch", "RestaurantSearch", "AttractionSearch"}
    assert ("FlightSearch", None) in proc.leg_tools
    assert set(proc.layouts) == {3, 5, 7}
    # a 3-day trip: out to the city, a day there, back home
    assert proc.layouts[3].days == (("travel", 0, 1), ("stay", 1), ("travel", 1, 0))
    assert proc.layouts[7].stops == 3 and proc.layouts[7].nights(1) == 2
    with pytest.raises(InvalidInput, match="no gold trajectory"):
        compile_procedure([("not a query", ["AccommodationSearch[Rockford]"])], env.db.city_state)


def test_the_procedure_plays_a_real_query_on_the_real_database(env, gold) -> None:
    traj = TravelPlannerSkill(_held_out(gold, 0), max_steps=60).run(env, 0)
    actions = [s.action for s in traj.steps]
    # St. Petersburg -> Rockford, March 16-18 2022: slots bound from the query text
    assert "FlightSearch[St. Petersburg, Rockford, 2022-03-16]" in actions
    assert "FlightSearch[Rockford, St. Petersburg, 2022-03-18]" in actions
    assert "AccommodationSearch[Rockford]" in actions
    acc = next(s.observation for s in traj.steps if s.action == "AccommodationSearch[Rockford]")
    rows = table_rows(acc)
    assert rows and all(r["city"] == "Rockford" for r in rows)
    assert {r["NAME"] for r in rows} <= {
        r["NAME"] for r in env.db.in_city("accommodations", "Rockford")
    }
    assert actions[-1].startswith("Planner[") and all(s.actor == "skill" for s in traj.steps)
    assert traj.metadata["retrieved"]


def test_assembled_plans_for_held_out_queries_pass_the_evaluator(env, gold) -> None:
    passed, graded = 0, 0
    for q in (0, 7, 16, 31, 37, 44):  # every trip length and level
        traj = TravelPlannerSkill(_held_out(gold, q), max_steps=60).run(env, q)
        if env.last_evaluation is not None:
            graded += 1
            passed += env.last_evaluation.final_pass
            assert traj.success == env.last_evaluation.final_pass
    assert graded and passed >= 1


def test_the_agent_never_sees_the_verdict_or_the_gold_plan(env, gold, monkeypatch) -> None:
    calls: list[int] = []
    played: list[str] = []
    real, step = env.evaluator.evaluate, env.step

    def spy(q, plan):
        calls.append(len(played))  # how many steps were played when it ran
        return real(q, plan)

    def counting(action):
        played.append(action)
        return step(action)

    monkeypatch.setattr(env.evaluator, "evaluate", spy)
    monkeypatch.setattr(env, "step", counting)
    # the gold plan is not there to be read: the skill plans from the tools alone
    blind = [dataclasses.replace(q, gold_plan=None) for q in env.queries]
    monkeypatch.setattr(env, "queries", blind)
    traj = TravelPlannerSkill(_held_out(gold, 1), max_steps=60).run(env, 1)
    n = len(traj.steps)
    assert calls == [n]  # evaluated once, at the last step: the submitted plan
    assert all("Plan submitted" not in s.observation for s in traj.steps[:-1])
    assert traj.steps[-1].action.startswith("Planner[") and traj.success


def _config(out: Path, folds: int = 5) -> Any:
    from memp.experiment.config import parse_config

    return parse_config({
        "name": "tp-folds", "models": ["scripted"], "embedder": "hash",
        "agent": {"max_steps": 60},
        "env": {"name": "travelplanner", "train_split": "train", "eval_split": "train",
                "train_episodes": 45, "eval_episodes": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                "folds": folds,
                "options": {"db_dir": str(SHARED / "database"),
                            "queries": str(SHARED / "train_gold_plans.jsonl")}},
        "conditions": [{"name": "executable-no-llm", "memory": "trajectory",
                        "mode": "executable", "use_llm": False}],
    })  # fmt: skip


def test_k_fold_memory_never_holds_the_query_it_is_tested_on(tmp_path) -> None:
    from memp.experiment.rundb import RunDB
    from memp.experiment.runner import run_experiment
    from memp.store import open_store

    cfg = _config(tmp_path)
    summary = run_experiment(cfg, tmp_path / "run", executor="inline", progress=False)
    env = cfg.env[0]
    with RunDB(tmp_path / "run" / "run.db") as db:
        rows = db.episodes(phase="eval")
        assert len(rows) == 11
        for r in rows:
            traj = db.trajectory(r.id)
            fold = env.fold_of()[r.episode]
            assert fold == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].index(r.episode) % 5
            path = next(m["path"] for m in db.memories() if m["env"].endswith(f"#fold{fold}"))
            store = open_store(path)
            try:
                active = store.list()
                tasks = {p.task for p in active}
                assert traj.task not in tasks  # the tested query is not in its memory
                # nor is any query of its fold
                held = [db.trajectory(x.id).task for x in rows if env.fold_of()[x.episode] == fold]
                assert not tasks & set(held) and len(active) >= 30
                assert set(traj.metadata["retrieved"]) <= {p.id for p in active}
            finally:
                store.close()
    # the benchmark's metrics reach the report, as rates
    metrics = summary["env_metrics"][env.key]["executable-no-llm"]
    assert set(metrics) >= {"delivery", "commonsense micro", "hard macro", "final pass"}
    assert 0 < metrics["final pass"] <= 1


def test_folds_are_checked_and_leave_other_fingerprints_alone(tmp_path) -> None:
    from memp.experiment.config import parse_config

    with pytest.raises(InvalidInput, match="train_split = eval_split"):
        parse_config({"name": "x", "env": {"name": "travelplanner", "eval_split": "test",
                                           "folds": 3}, "conditions": [{"name": "a"}]})  # fmt: skip
    cfg = _config(tmp_path)
    data = cfg.model_dump(mode="json")
    data["env"][0].pop("folds")
    plain = parse_config(data)
    assert plain.env[0].folds is None
    # a config without folds hashes as it did before folds existed
    import hashlib
    import json

    old = plain.model_dump(
        mode="json",
        exclude={"executor", "workers", "address", "target", "published", "subset_of"},
    )
    old["env"][0].pop("folds")
    for cond in old["conditions"]:  # fields added later, at their defaults
        cond.pop("envs")
        cond.pop("memory_from")
    blob = json.dumps(old, sort_keys=True).encode()
    assert plain.fingerprint() == hashlib.sha256(blob).hexdigest()[:16]
