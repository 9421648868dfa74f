"""The ALFWorld-like game generator: all six task types, official format, expert-solvable."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("alfworld", reason="alfworld is part of memp[envs]")

from env_data import generated_alfworld

from memp.envs.alfworld import AlfworldEnv
from memp.envs.alfworld_gen import (
    MANIFEST,
    TASK_TYPES,
    _Builder,
    generate,
)
from memp.errors import InvalidInput, UnknownOption


@pytest.fixture(scope="module")
def six_games(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    # Shared with the adapter tests (same split and seed): whichever runs first generates.
    return generated_alfworld(tmp_path_factory, 6)


@pytest.mark.timeout(300)
def test_generator_yields_all_six_task_types_that_the_engine_loads_and_the_expert_solves(six_games):
    out, report = six_games
    assert report.n_kept == 6 and not report.failed_slots
    assert set(report.kept) == set(TASK_TYPES)
    assert json.loads((out / MANIFEST).read_text())["alfworld_like"] is True

    env = AlfworldEnv("valid_unseen", data_dir=out, max_steps=250)
    assert len(env) == 6 and env.label == "ALFWorld-like"
    seen_types = set()
    for ep in range(len(env)):
        game = env.game_file(ep)
        # The official file layout: <task>/<trial>/{initial_state.pddl, traj_data.json, game.tw-pddl}
        assert (
            (game.parent / "initial_state.pddl").read_text().lstrip().startswith("(define (problem")
        )
        traj = json.loads((game.parent / "traj_data.json").read_text())
        assert set(traj["pddl_params"]) >= {
            "object_target",
            "parent_target",
            "toggle_target",
            "mrecep_target",
        }
        data = json.loads(game.read_text())
        assert data["solvable"] is True and data["walkthrough"]
        assert "UNKNOWN GOAL" not in data["grammar"]

        _obs, info = env.reset(episode=ep)
        assert info["alfworld_like"] is True and info["task"] and info["admissible"]
        seen_types.add(info["task_type"])
        won = False
        for action in env.expert_actions():
            assert action in env.admissible_actions()
            _obs, reward, won, truncated, info = env.step(action)
            if won or truncated:
                break
        assert won and reward == 1.0, f"expert did not win {game}"
    assert seen_types == set(TASK_TYPES)
    env.close()


@pytest.mark.timeout(120)
def test_rerun_keeps_existing_games_and_refuses_a_folder_of_another_split(six_games):
    out, _ = six_games
    again = generate("valid_unseen", 6, seed=7, out=out, progress=False)
    assert again.reused == 6 and sum(again.attempts.values()) == 0
    with pytest.raises(InvalidInput, match="splits must not share games"):
        generate("train", 1, seed=7, out=out, progress=False)


def test_splits_do_not_share_tasks():
    builder = _Builder()
    keys: dict[str, set[str]] = {}
    scenes: dict[str, set[int]] = {}
    for split in ("train", "valid_seen", "valid_unseen"):
        rng = random.Random(0)
        keys[split], scenes[split] = set(), set()
        for i in range(400):
            task = builder.sample_task(rng, split, TASK_TYPES[i % 6])
            if task is not None:
                keys[split].add(task.key)
                scenes[split].add(task.scene)
    assert keys["train"] and keys["valid_seen"] and keys["valid_unseen"]
    assert not keys["train"] & keys["valid_seen"]
    assert not (keys["train"] | keys["valid_seen"]) & keys["valid_unseen"]
    # valid_unseen draws only from ALFRED's held-out floor plans (1-6 of each room type)
    assert all(s % 100 <= 6 for s in scenes["valid_unseen"])
    assert all(s % 100 > 6 for s in scenes["train"] | scenes["valid_seen"])


def test_same_seed_same_game():
    builder = _Builder()
    texts = []
    for _ in range(2):
        rng = random.Random(42)
        task = None
        while task is None:
            task = builder.sample_task(rng, "train", "pick_heat_then_place_in_recep")
        texts.append(builder.build(rng, task))
    assert texts[0] == texts[1]


def test_bad_input_gets_a_clear_error(tmp_path):
    with pytest.raises(UnknownOption, match="valid choices: train, valid_seen, valid_unseen"):
        generate("test", 1, out=tmp_path, progress=False)
    with pytest.raises(UnknownOption, match="task type"):
        generate("train", 1, out=tmp_path, task_types=["make_coffee"], progress=False)
    with pytest.raises(InvalidInput, match="at least 1"):
        generate("train", 0, out=tmp_path, progress=False)


def test_importing_does_not_create_alfworld_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ALFWORLD_DATA"}
    env["HOME"] = str(tmp_path)
    code = (
        "import os\n"
        "from memp.envs.alfworld_gen import _Builder, ExpertRunner\n"
        "import memp.envs.alfworld\n"
        "_Builder(); ExpertRunner()\n"
        "assert 'ALFWORLD_DATA' not in os.environ\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert not (tmp_path / ".cache" / "alfworld").exists()
