"""ScienceWorld through the adapter: official splits, gold paths, the -100 focus rule, Java."""

from __future__ import annotations

import pytest
from env_data import llm_steps

from memp.envs import make_env
from memp.policies import ExpertPolicy


@pytest.fixture(scope="module")
def sw():
    env = make_env("scienceworld", "dev")
    yield env
    env.close()


def test_all_30_tasks_with_official_variations(sw) -> None:
    assert len(sw.task_names) == 30
    assert len(sw) == 1796  # the official dev variations of all tasks
    first = sw.episodes()[:30]
    assert sorted(t for t, _ in first) == sorted(sw.task_names)  # round-robin over tasks


def test_gold_path_wins_through_the_adapter() -> None:
    env = make_env("scienceworld", "test", tasks=["find-living-thing"])
    try:
        traj = ExpertPolicy().run(env, 0)
        assert traj.success is True
        assert traj.metadata["score"] == 100.0
        assert traj.metadata["stopped"] == "won"
        assert "focus on" in " ".join(traj.actions)
    finally:
        env.close()


def test_wrong_focus_ends_the_episode_with_minus_100() -> None:
    env = make_env("scienceworld", "train", tasks=["find-living-thing"])
    try:
        _obs, info = env.reset(episode=0)
        assert "focus on air" in info["admissible"]
        _obs, _reward, terminated, truncated, info = env.step("focus on air")
        assert terminated and not truncated
        assert info["score"] == -100.0 and not info["won"]
    finally:
        env.close()


def test_expert_actions_mid_episode_keep_the_state() -> None:
    env = make_env("scienceworld", "dev", tasks=["find-living-thing"])
    try:
        env.reset(episode=0)
        env.step("look around")
        gold = env.expert_actions()
        assert gold and env._taken == ["look around"]
        assert env.admissible_actions()
    finally:
        env.close()


def test_unknown_task_lists_the_valid_ones() -> None:
    from memp.errors import UnknownOption

    with pytest.raises(UnknownOption, match="boil"):
        make_env("scienceworld", tasks=["bake-a-cake"])


def test_agent_with_the_local_model_takes_valid_actions(sw, local_llm) -> None:
    traj = llm_steps(sw, local_llm, 1)
    assert traj.metadata["split"] == "dev" and traj.environment == "scienceworld"


def test_each_task_gets_its_budget_from_its_gold_length_and_episodes_report_the_score() -> None:
    import math

    from memp.envs.scienceworld import GOLD_LENGTHS
    from memp.errors import UnknownOption

    tasks = ["find-living-thing", "boil"]
    env = make_env("scienceworld", "dev", tasks=tasks, budget="gold", budget_multiple=1.5,
                   budget_min=5, step_limit=60)  # fmt: skip
    try:
        assert set(GOLD_LENGTHS) == set(env._sim.get_task_names())
        kinds = [env.task_type(i) for i in range(4)]
        assert kinds == [t for t, _ in env.episodes()[:4]]
        budgets = [env.step_budget(i) for i in range(4)]
        assert budgets == [min(60, max(5, math.ceil(1.5 * GOLD_LENGTHS[k]))) for k in kinds]
        assert budgets[0] == budgets[2] and budgets[0] != budgets[1]  # per task, not variation
        traj = ExpertPolicy().run(env, 0)
        assert traj.success and env.episode_metrics() == {"score": 100.0, "raw score": 100.0}
        assert env.task_type() == kinds[0]
        env.reset(episode=0)
        env.step("focus on air")  # a wrong focus: -100 in the simulator, 0 as averaged
        assert env.episode_metrics() == {"score": 0.0, "raw score": -100.0}
    finally:
        env.close()
    plain = make_env("scienceworld", "dev", tasks=tasks)
    try:
        assert plain.step_budget(0) is None  # by default the run's max_steps
    finally:
        plain.close()
    with pytest.raises(UnknownOption, match="gold"):
        make_env("scienceworld", "dev", tasks=tasks, budget="silver")


def test_the_runner_plays_each_episode_to_its_own_budget_and_reports_the_score(tmp_path) -> None:
    from memp.experiment.config import parse_config
    from memp.experiment.rundb import RunDB
    from memp.experiment.runner import run_experiment

    opts = {"tasks": "find-living-thing,boil", "budget": "gold", "budget_min": 3,
            "budget_multiple": 1.0, "step_limit": 60}  # fmt: skip
    cfg = parse_config({
        "name": "sw-budget", "models": ["scripted"], "embedder": "hash",
        "agent": {"max_steps": 50},
        "env": {"name": "scienceworld", "train_split": "train", "eval_split": "dev",
                "train_episodes": 1, "eval_episodes": 2, "options": opts},
        "conditions": [{"name": "no-memory"}],
    })  # fmt: skip
    s = run_experiment(cfg, tmp_path / "run", executor="inline", progress=False)
    env = make_env("scienceworld", "dev", **opts)
    try:
        want = {e: env.step_budget(e) for e in range(2)}
    finally:
        env.close()
    with RunDB(tmp_path / "run" / "run.db") as db:
        rows = db.episodes(phase="eval")
        got = {r.episode: db.trajectory(r.id).metadata["step_budget"] for r in rows}
        assert all(r.steps <= want[r.episode] for r in rows)
        fails = [r for r in rows if not r.success]
    assert got == want and want[0] != want[1]
    (m,) = s["conditions"]
    # a failure counts at its own episode's budget, not the run's max_steps
    assert fails and m["mean_steps"] == sum(
        want[r.episode] if not r.success else r.steps for r in rows) / len(rows)  # fmt: skip
    assert "score" in s["env_metrics"][cfg.env[0].key]["no-memory"]
    assert "score" in s["by_type"][cfg.env[0].key]["boil"]["no-memory"]["metrics"]


def test_spread_order_covers_the_variations_parameters() -> None:
    from memp.envs.scienceworld import spread

    assert spread(14)[:4] == [0, 7, 3, 10]
    assert sorted(spread(240)) == list(range(240))
    first = make_env("scienceworld", "train", tasks=["boil"])
    spread_env = make_env("scienceworld", "train", tasks=["boil"], order="spread")
    try:
        # the first training variations of boil all boil water; spread ones do not
        def tasks(env) -> set[str]:
            out = set()
            for i in range(4):
                _, info = env.reset(episode=i)
                out.add(info["task"].split(".")[0])
            return out

        assert len(tasks(first)) == 1
        assert len(tasks(spread_env)) >= 3
    finally:
        first.close()
        spread_env.close()
