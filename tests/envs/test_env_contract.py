"""The environment contract, run over every registered environment (Gymnasium's
``check_env`` in spirit): what the agents, the distiller and the runner rely on.

Each environment plays on the small data its own tests use: ALFWorld on generated
games and on official game files, ScienceWorld on one task, TextWorld on easy
generated games, TextWorldExpress on a one-room twc, TravelPlanner on its fixture.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from env_data import TRAVELPLANNER_DB, TRAVELPLANNER_QUERIES, generated_alfworld

from memp.envs import env_names, make_env
from memp.envs.base import INFO_KEYS, ActionSemantics, Env
from memp.errors import InvalidInput


@dataclass
class Case:
    env: str
    split: str
    options: Callable[[pytest.FixtureRequest], dict[str, Any]]
    # options that make the step limit small, the step at which truncation must come
    # (None: "by limit + 1", the engine enforces its own limit and counts moves its way),
    # and an action that neither wins nor loses
    limit: dict[str, Any]
    truncates_at: int | None
    idle: str
    expert_episode: int | None = 0
    # a step after a won episode is answered (TravelPlanner: "already submitted"), not refused
    answers_after_a_win: bool = False
    # ScienceWorld lists a room's contents in an order that can change from one reset to
    # the next (and words its action list differently): the same episode then starts with
    # the same lines, in some order
    listing_order_varies: bool = False


def _alfworld_generated(request: pytest.FixtureRequest) -> dict[str, Any]:
    games = generated_alfworld(request.getfixturevalue("tmp_path_factory"), 2)[0]
    return {"data_dir": games, "task_types": "pick_and_place_simple,look_at_obj_in_light"}


def _alfworld_official(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"data_dir": request.getfixturevalue("official_alfworld")}


def _textworld(request: pytest.FixtureRequest) -> dict[str, Any]:
    cache = request.getfixturevalue("tmp_path_factory").getbasetemp() / "contract_twgames"
    return {"n": 2, "level": "easy", "cache_dir": cache}


CASES = {
    "alfworld-generated": Case(
        "alfworld", "valid_unseen", _alfworld_generated, {"max_steps": 3}, 3, "look"
    ),
    "alfworld-official": Case(
        "alfworld", "valid_seen", _alfworld_official, {"max_steps": 3}, 3, "look"
    ),
    "scienceworld": Case(
        "scienceworld",
        "test",
        lambda _r: {"tasks": ["find-living-thing"]},
        {"step_limit": 3},
        None,
        "wait1",
        listing_order_varies=True,
    ),
    "textworld": Case("textworld", "train", _textworld, {"max_steps": 3}, 3, "look"),
    "twx": Case(
        "twx",
        "dev",
        lambda _r: {"game": "twc", "params": "numLocations=1,numItemsToPutAway=2"},
        {"step_limit": 3},
        None,
        "look around",
    ),
    "travelplanner": Case(
        "travelplanner",
        "train",
        lambda _r: {"db_dir": TRAVELPLANNER_DB, "queries": TRAVELPLANNER_QUERIES},
        {"max_steps": 3},
        3,
        "CitySearch[North Carolina]",
        answers_after_a_win=True,
    ),
}


def _build(case: Case, request: pytest.FixtureRequest, **more: Any) -> Env:
    return make_env(case.env, case.split, **case.options(request), **more)


@pytest.fixture(scope="module", params=sorted(CASES))
def case_env(request: pytest.FixtureRequest):
    case = CASES[request.param]
    env = _build(case, request)
    yield case, env
    env.close()


def check_info(info: dict[str, Any]) -> None:
    assert list(info)[: len(INFO_KEYS)] == list(INFO_KEYS), list(info)
    assert isinstance(info["task"], str)
    assert info["admissible"] is None or (
        isinstance(info["admissible"], list) and all(isinstance(a, str) for a in info["admissible"])
    )
    assert isinstance(info["won"], bool) and isinstance(info["score"], float)


def test_every_registered_environment_is_covered() -> None:
    assert {c.env for c in CASES.values()} == set(env_names())


@pytest.mark.timeout(600)
def test_reset_and_step_shapes(case_env) -> None:
    case, env = case_env
    assert isinstance(env, Env) and isinstance(env.semantics, ActionSemantics)
    assert env.name == case.env and isinstance(env.family, str) and isinstance(env.split, str)
    assert len(env) >= 1
    obs, info = env.reset(episode=0)
    assert isinstance(obs, str) and obs
    check_info(info)
    assert info["task"] == env.task and info["won"] is False
    admissible = env.admissible_actions()
    assert admissible == info["admissible"]
    result = env.step(case.idle)
    assert len(result) == 5
    obs, reward, terminated, truncated, info = result
    assert isinstance(obs, str) and isinstance(reward, float)
    assert isinstance(terminated, bool) and isinstance(truncated, bool)
    check_info(info)
    assert env.admissible_actions() == info["admissible"]


@pytest.mark.timeout(600)
def test_the_same_episode_starts_the_same_way(case_env) -> None:
    case, env = case_env

    def start(episode: int) -> tuple[Any, str, Any]:
        obs, info = env.reset(episode=episode)
        if case.listing_order_varies:
            return sorted(re.split(r"[\n,]\s*", obs)), info["task"], None
        return obs, info["task"], info["admissible"]

    last = len(env) - 1
    first = start(last)
    start(0)
    assert start(last) == first


@pytest.mark.timeout(600)
def test_the_expert_wins_a_small_episode(case_env) -> None:
    case, env = case_env
    if case.expert_episode is None:
        pytest.skip(f"{case.env} has no expert")
    env.reset(episode=case.expert_episode)
    plan = env.expert_actions()
    assert plan and all(isinstance(a, str) for a in plan)
    won = False
    for action in plan:
        _obs, reward, terminated, truncated, info = env.step(action)
        won = info["won"]
        if terminated or truncated:
            break
    assert won and terminated and not truncated and reward > 0, (case.env, plan)
    if case.answers_after_a_win:
        obs, reward, terminated, _truncated, info = env.step(case.idle)
        assert terminated and reward == 0.0 and info["won"], obs
    else:
        with pytest.raises(InvalidInput, match="episode is over; call reset"):
            env.step(case.idle)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(CASES))
def test_guards_truncation_and_close(name: str, request: pytest.FixtureRequest) -> None:
    case = CASES[name]
    env = _build(case, request, **case.limit)
    try:
        with pytest.raises(InvalidInput, match="no episode started; call reset"):
            env.step(case.idle)
        for bad in (len(env), -1):
            with pytest.raises(InvalidInput, match=f"episode {bad} is out of range"):
                env.reset(episode=bad)
        (limit,) = case.limit.values()
        due = case.truncates_at or limit + 1
        for _ in range(2):  # a truncated episode, then a fresh one on the same env
            env.reset(episode=0)
            steps, truncated = 0, False
            while not truncated and steps < due:
                _obs, reward, terminated, truncated, info = env.step(case.idle)
                steps += 1
                assert not terminated and not info["won"] and reward <= 0.0
            assert truncated, f"no truncation within {due} steps"
            assert case.truncates_at in (None, steps)
            with pytest.raises(InvalidInput, match="episode is over; call reset"):
                env.step(case.idle)
    finally:
        env.close()
        env.close()  # idempotent
    with pytest.raises(InvalidInput, match="no episode started"):
        env.step(case.idle)
