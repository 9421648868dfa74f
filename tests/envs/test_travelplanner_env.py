"""TravelPlanner tool environment on a hand-made fixture in the official formats."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from env_data import TRAVELPLANNER_DB as DB
from env_data import TRAVELPLANNER_QUERIES as QUERIES

from memp.agent import ReActAgent
from memp.envs import make_env
from memp.envs.travelplanner import DB_FILES, TravelPlannerEnv, format_plan, parse_plan
from memp.envs.travelplanner import env as tp_env
from memp.errors import MissingData
from memp.policies import ExpertPolicy

TOOLS = ("FlightSearch", "GoogleDistanceMatrix", "DistanceMatrix", "AccommodationSearch",
         "RestaurantSearch", "AttractionSearch", "CitySearch", "NotebookWrite", "Planner")  # fmt: skip


@pytest.fixture()
def env() -> TravelPlannerEnv:
    return make_env("travelplanner", "train", db_dir=DB, queries=QUERIES)


def test_expert_plays_each_query_to_success(env: TravelPlannerEnv) -> None:
    assert len(env) == 2
    for ep in range(len(env)):
        traj = ExpertPolicy().run(env, ep)
        assert traj.success is True, traj.steps[-1].observation
        assert traj.steps[-1].action.startswith("Planner[")
        ev = env.last_evaluation
        assert ev is not None and ev.final_pass
        assert all(c.passed is True for c in ev.commonsense.values())
    # The second query's hard constraints (cuisine, room type, no flight) were all checked.
    assert ev.hard is not None
    assert all(
        ev.hard[k].passed is True
        for k in ("valid_cuisine", "valid_room_type", "valid_transportation")
    )


def test_tools_answer_in_the_benchmark_formats(env: TravelPlannerEnv) -> None:
    env.reset(episode=0)
    obs, *_ = env.step("FlightSearch[Ithaca, Charlotte, 2022-03-08]")
    assert "F0000001" in obs and "F0000003" in obs and "F0000002" not in obs
    obs, *_ = env.step("NotebookWrite[Flights from Ithaca to Charlotte]")
    assert "index is 0" in obs
    assert env.notebook[0]["Short Description"] == "Flights from Ithaca to Charlotte"
    obs, *_ = env.step("DistanceMatrix[Ithaca, Charlotte, taxi]")
    assert "cost: 1050" in obs
    obs, *_ = env.step("GoogleDistanceMatrix[Ithaca, Charlotte, self-driving]")
    assert "cost: 52" in obs
    assert "Luigi's Trattoria" in env.step("RestaurantSearch[Charlotte]")[0]
    assert "Entire loft with view" in env.step("AccommodationSearch[Charlotte]")[0]
    assert "Discovery Place" in env.step("AttractionSearch[Charlotte]")[0]
    assert env.step("CitySearch[North Carolina]")[0] == "Charlotte, Raleigh"
    assert env.step("FlightSearch[Ithaca, Raleigh, 2022-03-08]")[0].startswith("There is no flight")
    assert env.step("Teleport[Mars]")[0].startswith("Unknown tool")
    assert env.step("book me a flight")[0].startswith("Invalid action")


def _expert_plan(env: TravelPlannerEnv, episode: int) -> list[dict]:
    env.reset(episode=episode)
    plan = env.annotated_plan()
    assert plan is not None
    return [dict(d) for d in plan]


def test_evaluator_catches_broken_constraints(env: TravelPlannerEnv) -> None:
    q = env.queries[1]  # two people, cuisine Italian+Chinese, entire room, no flight, $1,000
    good = _expert_plan(env, 1)
    assert env.evaluator.evaluate(q, good).final_pass

    flight = [dict(d) for d in good]
    flight[0]["transportation"] = (
        "Flight Number: F0000001, from Ithaca to Charlotte, Departure Time: 05:38, Arrival Time: 07:46"
    )
    assert env.evaluator.hard(q, flight)["valid_transportation"].passed is False
    # Self-driving back after a flight out is the benchmark's "conflicting transportation".
    assert env.evaluator.commonsense(q, flight)["is_valid_transportation"].passed is False

    shared = [dict(d) for d in good]
    for d in shared[:2]:
        d["accommodation"] = "Shared bunk by the park, Charlotte"
    assert env.evaluator.hard(q, shared)["valid_room_type"].passed is False

    no_chinese = [dict(d) for d in good]
    no_chinese[1]["lunch"] = "Bombay Vada Pav, Charlotte"
    assert env.evaluator.hard(q, no_chinese)["valid_cuisine"].passed is False

    repeated = [dict(d) for d in good]
    repeated[1]["dinner"] = repeated[0]["dinner"]
    assert env.evaluator.commonsense(q, repeated)["is_valid_restaurants"].passed is False

    invented = [dict(d) for d in good]
    invented[1]["lunch"] = "The Imaginary Bistro, Charlotte"
    ev = env.evaluator.evaluate(q, invented)
    assert ev.commonsense["is_valid_information_in_sandbox"].passed is False
    assert ev.hard is None and not ev.final_pass  # hard checks need a grounded plan

    one_night = [dict(d) for d in good]
    one_night[1]["accommodation"] = "Cozy room near downtown, Charlotte"  # loft needs 2 nights
    assert env.evaluator.commonsense(q, one_night)["is_valid_accommodation"].passed is False

    expensive = dataclasses.replace(q, budget=300)
    assert env.evaluator.hard(expensive, good)["valid_cost"].passed is False
    assert env.evaluator.total_cost(q, good) == 52 * 2 + 150 * 2 + (35 + 15 + 18 + 25 + 22) * 2


def test_plan_text_round_trips_and_a_bad_plan_loses(env: TravelPlannerEnv) -> None:
    plan = _expert_plan(env, 0)
    assert parse_plan(format_plan(plan)) == [{**d, "days": d["days"]} for d in plan]
    env.reset(episode=0)
    obs, reward, terminated, _, info = env.step(
        "Planner[Day 1:\nCurrent City: Charlotte\nTransportation: -]"
    )
    assert terminated and not info["won"] and reward == 0.0
    assert "Failed" in obs


def test_missing_files_are_each_listed_with_their_origin(tmp_path: Path) -> None:
    db = tmp_path / "database"
    shutil.copytree(DB, db)
    (db / DB_FILES["restaurants"]).unlink()
    (db / DB_FILES["cities"]).unlink()
    with pytest.raises(MissingData) as err:
        make_env("travelplanner", "validation", db_dir=db, queries=QUERIES)
    msg = str(err.value)
    assert "clean_restaurant_2022.csv" in msg and "citySet_with_states.txt" in msg
    assert "flights" not in msg  # present files are not listed
    assert "validation.jsonl|.json|.csv" in msg and "osunlp/TravelPlanner" in msg
    assert "OSU-NLP-Group/TravelPlanner" in msg


def test_nothing_given_names_the_flags_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMP_TRAVELPLANNER_DB", raising=False)
    monkeypatch.delenv("MEMP_TRAVELPLANNER_QUERIES", raising=False)
    monkeypatch.setattr(tp_env, "default_data", lambda: None)  # no ../shared/travelplanner
    with pytest.raises(MissingData) as err:
        make_env("travelplanner")
    assert "MEMP_TRAVELPLANNER_DB" in str(err.value) and "MEMP_TRAVELPLANNER_QUERIES" in str(
        err.value
    )


def test_paths_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMP_TRAVELPLANNER_DB", str(DB))
    monkeypatch.setenv("MEMP_TRAVELPLANNER_QUERIES", str(QUERIES / "train.csv"))
    env = make_env("travelplanner", "train")
    _, info = env.reset(episode=1)
    assert "Italian and Chinese" in info["task"] and info["admissible"] is None


def test_agent_with_the_local_model_calls_tools(env: TravelPlannerEnv, local_llm) -> None:
    agent = ReActAgent(local_llm, max_steps=3, max_tokens=40)
    traj = agent.run(env, 0)
    assert len(traj.steps) >= 1
    for step in traj.steps:
        assert step.actor == "llm" and step.prompt_tokens > 0 and step.latency_s > 0
        assert step.action.split("[", 1)[0] in TOOLS, step.info["raw"]


def test_both_official_day_headers_parse() -> None:
    a = parse_plan("Day 1:\nCurrent City: Charlotte\nBreakfast: Subway, Charlotte")
    b = parse_plan("Day: 1\nCurrent City: Charlotte\nBreakfast: Subway, Charlotte")
    assert a == b and a[0]["breakfast"] == "Subway, Charlotte" and a[0]["lunch"] == "-"


def test_a_records_fields_are_checked_against_its_own_text(env: TravelPlannerEnv) -> None:
    from memp.envs.travelplanner import disagreements

    for q in env.queries:  # the records' annotations and their texts agree
        assert disagreements(q, env.db.city_state) == {}
    tampered = dataclasses.replace(env.queries[1], room_type="private room", people_number=3)
    assert disagreements(tampered, env.db.city_state) == {
        "people_number": (3, 2),
        "room_type": ("private room", "entire room"),
    }
