"""TravelPlanner on its real database and the 45 training queries: every gold plan
against the benchmark's constraints, hand-broken plans failing exactly the broken
constraint, the published rates, and both modes played end to end by the expert."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memp.envs import make_env
from memp.envs.travelplanner import (
    COMMONSENSE,
    HARD,
    TravelPlannerEnv,
    aggregate,
    evaluate_plan,
    format_plan,
    name_city,
)
from memp.policies import ExpertPolicy

SHARED = Path(__file__).resolve().parents[3] / "shared" / "travelplanner"
pytestmark = pytest.mark.skipif(
    not (SHARED / "train_gold_plans.jsonl").is_file(), reason="no ../shared/travelplanner"
)

# Gold plan 41 (Seattle to 3 cities of Texas) lists, on days 4 and 5 spent in San Antonio,
# attractions of San Angelo and of Houston: that breaks "Within Current City" as the
# paper states it. The official script passes it, since on a day in one city it compares
# the entries with the city name's single characters; this evaluator checks every day.
GOLD_FAILS = {41: {"is_valid_information_in_current_city"}}


@pytest.fixture(scope="module")
def env() -> TravelPlannerEnv:
    return make_env("travelplanner", "train", db_dir=SHARED / "database",
                    queries=SHARED / "train_gold_plans.jsonl")  # fmt: skip


def gold(env: TravelPlannerEnv, i: int) -> list[dict[str, Any]]:
    return [dict(d) for d in env.queries[i].gold_plan or []]


def failed(env: TravelPlannerEnv, i: int, plan: list[dict[str, Any]], **query: Any) -> set[str]:
    q = dataclasses.replace(env.queries[i], **query) if query else env.queries[i]
    return set(env.evaluator.evaluate(q, plan).failed())


# -- the gold plans ---------------------------------------------------------------------


def test_every_gold_plan_passes_every_constraint_it_should(env: TravelPlannerEnv) -> None:
    verdicts = []
    for i, q in enumerate(env.queries):
        v = env.evaluator.evaluate(q, q.gold_plan)
        verdicts.append(v)
        assert set(v.failed()) == GOLD_FAILS.get(i, set()), (i, v.failed())
        assert v.hard is not None and v.cost is not None and v.cost <= q.budget
        # each local constraint the query sets was checked, the others were not asked
        assert {k for k, c in v.hard.items() if c.passed is not None} == set(q.hard_asked)
    rates = aggregate(verdicts)
    assert rates.per_constraint == {
        **{k: (45, 45) for k in COMMONSENSE},
        "is_valid_information_in_current_city": (44, 45),
        "valid_cost": (45, 45),
        "valid_room_rule": (15, 15),
        "valid_room_type": (17, 17),
        "valid_cuisine": (16, 16),
        "valid_transportation": (12, 12),
    }
    assert rates.as_dict() == {
        "Delivery Rate": 1.0,
        "Commonsense Constraint Micro Pass Rate": 359 / 360,
        "Commonsense Constraint Macro Pass Rate": 44 / 45,
        "Hard Constraint Micro Pass Rate": 1.0,
        "Hard Constraint Macro Pass Rate": 1.0,
        "Final Pass Rate": 44 / 45,
    }
    assert set(rates.per_constraint) == set(COMMONSENSE) | set(HARD)


def test_rates_count_a_plan_not_delivered_and_an_unchecked_one(env: TravelPlannerEnv) -> None:
    qs = env.queries
    broken = gold(env, 30)
    broken[1]["attraction"] = "-"  # incomplete: its 4 hard constraints are not checked
    verdicts = [
        env.evaluator.evaluate(qs[0], qs[0].gold_plan),
        env.evaluator.evaluate(qs[30], broken),
        env.evaluator.evaluate(qs[31], ""),  # nothing delivered
        env.evaluator.evaluate(qs[32], None),
    ]
    assert [v.delivered for v in verdicts] == [True, True, False, False]
    assert verdicts[1].hard is None and not verdicts[1].hard_pass
    r = aggregate(verdicts)
    assert r.n == 4 and r.delivery == 0.5
    assert r.commonsense_micro == (8 + 7) / 32 and r.commonsense_macro == 0.25
    # hard: 1 (query 0) + 4 + 4 + 4 applicable, only query 0's budget passed
    assert r.hard_micro == 1 / 13 and r.hard_macro == 0.25 and r.final == 0.25
    assert aggregate([]).n == 0


def test_evaluate_plan_takes_text_or_days_and_finds_the_database(env: TravelPlannerEnv) -> None:
    q = env.queries[5]
    as_text = evaluate_plan(q, format_plan(q.gold_plan or []))
    assert as_text.final_pass and as_text.to_dict()["final_pass"] is True
    assert evaluate_plan(q, q.gold_plan, env.db).cost == as_text.cost
    assert not evaluate_plan(q, "no plan today").delivered


# -- hand-broken plans fail exactly the broken constraint ------------------------------


def _stay(plan: list[dict[str, Any]], day: int) -> list[int]:
    acc = plan[day]["accommodation"]
    return [i for i, d in enumerate(plan) if d["accommodation"] == acc]


def swap_stay(
    env: TravelPlannerEnv, i: int, day: int, ok: Callable[[dict[str, str], dict[str, str]], bool]
) -> list[dict[str, Any]]:
    """Gold plan ``i`` with the stay that covers ``day`` moved to another accommodation of
    the city for which ``ok(new, old)`` holds, unambiguous by name and long enough."""
    plan = gold(env, i)
    nights = _stay(plan, day)
    written = plan[day]["accommodation"]
    name, city = name_city(written)
    old = env.db.find("accommodations", name, city)
    assert old is not None
    for row in env.db.in_city("accommodations", city):
        if row is old or len(env.db.matches("accommodations", row["NAME"], city)) != 1:
            continue
        if float(row["minimum nights"]) <= len(nights) and ok(row, old):
            new = f"{row['NAME']}, {written.rsplit(',', 1)[1].strip()}"
            for n in nights:
                plan[n]["accommodation"] = new
            return plan
    raise AssertionError(f"no accommodation in {city} fits")


def _per_night(row: dict[str, str], people: int) -> float:
    return float(row["price"]) * -(-people // int(float(row["maximum occupancy"])))


def test_over_budget(env: TravelPlannerEnv) -> None:
    people = env.queries[0].people_number
    pricier = swap_stay(
        env, 0, 1, lambda new, old: _per_night(new, people) > _per_night(old, people) + 100
    )
    assert failed(env, 0, pricier) == {"valid_cost"}
    cost = env.evaluator.total_cost(env.queries[0], gold(env, 0))
    assert failed(env, 0, gold(env, 0), budget=cost - 1) == {"valid_cost"}
    assert failed(env, 0, gold(env, 0), budget=cost) == set()


def test_smoking_in_a_non_smoking_room(env: TravelPlannerEnv) -> None:
    q = env.queries[21]  # a group of 4 that needs to smoke
    assert q.house_rule == "smoking"
    plan = swap_stay(env, 21, 0, lambda new, old: "No smoking" in new["house_rules"]
                     and _per_night(new, 4) <= _per_night(old, 4))  # fmt: skip
    assert failed(env, 21, plan) == {"valid_room_rule"}


def test_wrong_room_type(env: TravelPlannerEnv) -> None:
    assert env.queries[18].room_type == "private room"
    plan = swap_stay(env, 18, 0, lambda new, old: new["room type"] == "Entire home/apt"
                     and _per_night(new, 2) <= _per_night(old, 2))  # fmt: skip
    assert failed(env, 18, plan) == {"valid_room_type"}


def test_a_stay_shorter_than_its_minimum_nights(env: TravelPlannerEnv) -> None:
    plan, city = gold(env, 0), "Rockford"  # two nights there, at most $243 a night
    rows = [r for r in env.db.in_city("accommodations", city)
            if float(r["minimum nights"]) > 2 and float(r["price"]) <= 243
            and len(env.db.matches("accommodations", r["NAME"], city)) == 1]  # fmt: skip
    plan[0]["accommodation"] = plan[1]["accommodation"] = f"{rows[0]['NAME']}, {city}"
    assert failed(env, 0, plan) == {"is_valid_accommodation"}


def test_missing_cuisine(env: TravelPlannerEnv) -> None:
    q = env.queries[15]  # two people who want American and French food
    assert q.cuisine == ("American", "French")
    plan = gold(env, 15)
    used = {d[k] for d in plan for k in ("breakfast", "lunch", "dinner")}
    for day in plan:
        for key in ("breakfast", "lunch", "dinner"):
            name, city = name_city(day[key])
            row = env.db.find("restaurants", name, city) if day[key] != "-" else None
            if row is None or "French" not in row["Cuisines"]:
                continue
            swap = next(r for r in env.db.in_city("restaurants", city)
                        if "French" not in r["Cuisines"] and "American" in r["Cuisines"]
                        and float(r["Average Cost"]) <= float(row["Average Cost"])
                        and f"{r['Name']}, {city}" not in used)  # fmt: skip
            day[key] = f"{swap['Name']}, {city}"
            used.add(day[key])
    assert failed(env, 15, plan) == {"valid_cuisine"}


def test_a_repeated_restaurant_and_a_repeated_attraction(env: TravelPlannerEnv) -> None:
    plan = gold(env, 0)
    plan[2]["lunch"] = plan[1]["lunch"]  # Flying Mango again, and cheaper
    assert failed(env, 0, plan) == {"is_valid_restaurants"}
    plan = gold(env, 0)
    plan[2]["attraction"] += plan[1]["attraction"].split(";")[0] + ";"
    assert failed(env, 0, plan) == {"is_valid_attractions"}


def test_a_meal_in_a_city_outside_the_days_route(env: TravelPlannerEnv) -> None:
    plan = gold(env, 0)  # day 2 is spent in Rockford
    elsewhere = next(r for r in env.db.restaurants
                     if r["City"] not in ("Rockford", "St. Petersburg") and float(r["Average Cost"]) <= 20
                     and len(env.db.matches("restaurants", r["Name"], r["City"])) == 1)  # fmt: skip
    plan[1]["lunch"] = f"{elsewhere['Name']}, {elsewhere['City']}"
    assert failed(env, 0, plan) == {"is_valid_information_in_current_city"}


def test_a_route_outside_the_querys_state(env: TravelPlannerEnv) -> None:
    # query 5 tours San Antonio and Houston; asked for Florida, the same plan leaves the state
    assert failed(env, 5, gold(env, 5), dest="Florida") == {"is_reasonable_visiting_city"}
    plan = gold(env, 0)  # a trip that does not come back is no closed circle
    plan[2]["current_city"] = "Rockford"
    plan[2]["transportation"] = "-"
    plan[2]["attraction"] = "Klehm Arboretum & Botanic Garden, Rockford;"
    assert failed(env, 0, plan) == {"is_reasonable_visiting_city"}


def test_a_forbidden_and_a_conflicting_transport_mode(env: TravelPlannerEnv) -> None:
    q = env.queries[34]  # five people who will not self-drive; the gold plan flies
    assert q.transportation == "no self-driving"
    plan = gold(env, 34)
    for day, (a, b) in ((0, (q.org, q.dest)), (2, (q.dest, q.org))):
        info = env.db.drive(a, b, "self-driving")
        plan[day]["transportation"] = (
            f"Self-driving, from {a} to {b}, duration: {info['duration']}, "
            f"distance: {info['distance']}, cost: {info['cost']}"
        )
    assert failed(env, 34, plan) == {"valid_transportation"}
    plan = gold(env, 2)  # fly out from Las Vegas, drive back from Stockton: the car is not there
    info = env.db.drive("Stockton", "Las Vegas", "self-driving")
    plan[2]["transportation"] = f"Self-driving, from Stockton to Las Vegas, cost: {info['cost']}"
    assert failed(env, 2, plan) == {"is_valid_transportation"}


def test_a_flight_that_does_not_exist(env: TravelPlannerEnv) -> None:
    plan = gold(env, 0)
    plan[0]["transportation"] = plan[0]["transportation"].replace("F3573659", "F9999999")
    v = env.evaluator.evaluate(env.queries[0], plan)
    assert set(v.failed()) == {"is_valid_information_in_sandbox", "hard constraints"}
    assert v.hard is None and not v.final_pass  # the benchmark checks hard ones only in the sandbox
    plan = gold(env, 0)  # a real flight number, on the wrong leg
    plan[0]["transportation"] = plan[0]["transportation"].replace("F3573659", "F3573120")
    assert failed(env, 0, plan) == {"is_valid_information_in_sandbox", "hard constraints"}


def test_incomplete_information(env: TravelPlannerEnv) -> None:
    plan = gold(env, 0)
    plan[1]["attraction"] = "-"
    assert failed(env, 0, plan) == {"is_not_absent", "hard constraints"}
    assert failed(env, 0, gold(env, 0)[:2]) >= {"is_not_absent", "is_reasonable_visiting_city"}


# -- the two modes, end to end ---------------------------------------------------------


@pytest.mark.parametrize("episode", [0, 20, 44])
def test_two_stage_the_expert_gathers_then_plans_and_wins(
    env: TravelPlannerEnv, episode: int
) -> None:
    traj = ExpertPolicy().run(env, episode)
    assert traj.success is True, traj.steps[-1].observation
    assert traj.steps[-1].action.startswith("Planner[") and len(traj.steps) > 6
    for step in traj.steps:
        if step.action.startswith(("FlightSearch", "GoogleDistanceMatrix", "AccommodationSearch")):
            assert not env.semantics.failed(step.action, step.observation), step
    plan = env.queries[episode].gold_plan or []
    flights = [s.observation for s in traj.steps if s.action.startswith("FlightSearch")]
    for day in plan:
        if "Flight Number:" in day["transportation"]:
            number = day["transportation"].split("Flight Number:")[1].split(",")[0].strip()
            assert any(number in obs for obs in flights), number


def test_sole_planning_gives_the_reference_and_asks_only_for_the_plan() -> None:
    env = make_env("travelplanner", "train", mode="sole-planning")
    obs, info = env.reset(episode=0)
    assert info["task"] == env.queries[0].text and info["mode"] == "sole-planning"
    assert (
        "Flight Number: F3573659" in obs
        and "Coco Bambu" in obs
        and obs.endswith(env.queries[0].text)
    )
    answer, reward, terminated, _, _ = env.step(
        "FlightSearch[St. Petersburg, Rockford, 2022-03-16]"
    )
    assert "sole-planning" in answer and reward == 0.0 and not terminated
    for episode in (0, 27, 41):
        traj = ExpertPolicy().run(env, episode)
        assert len(traj.steps) == 1 and traj.steps[0].action.startswith("Planner[")
        assert traj.success is (episode not in GOLD_FAILS), traj.steps[0].observation
    env.reset(episode=1)
    plan = gold(env, 0)  # another query's plan
    _obs, reward, terminated, _, info = env.step(f"Planner[{format_plan(plan)}]")
    assert terminated and reward == 0.0 and not info["won"]
    assert info["evaluation"]["final_pass"] is False and 0.0 < info["score"] < 1.0


def test_the_default_data_and_the_reward_is_the_final_pass() -> None:
    env = make_env("travelplanner")  # ../shared/travelplanner
    assert len(env) == 45 and env.mode == "two-stage"
    env.reset(episode=41)
    *_, last = [env.step(a) for a in env.expert_actions() or []]
    _obs, reward, terminated, _, info = last
    assert terminated and reward == 0.0 and not info["won"]  # see GOLD_FAILS
    assert info["evaluation"]["commonsense"]["is_valid_information_in_current_city"][0] is False
    env.reset(episode=40)
    *_, last = [env.step(a) for a in env.expert_actions() or []]
    assert last[1] == 1.0 and last[4]["won"] and last[4]["score"] == 1.0
