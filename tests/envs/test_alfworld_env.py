"""The ALFWorld adapter on the real alfworld engine (generated ALFWorld-like games)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("alfworld", reason="alfworld is part of memp[envs]")

from env_data import ALFWORLD_SHARED as SHARED
from env_data import generated_alfworld, llm_steps

from memp.envs.alfworld import AlfworldEnv, AlfworldSemantics
from memp.envs.alfworld_gen import MANIFEST, TASK_TYPES
from memp.envs.base import ActionSemantics, Env
from memp.errors import InvalidInput, MissingData

# The two games this file plays; the same folder (split, seed) as the generator tests,
# which then reuse them instead of generating them again.
TYPES = ["pick_and_place_simple", "look_at_obj_in_light"]


@pytest.fixture(scope="module")
def games(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_alfworld(tmp_path_factory, 2)[0]


def make(games: Path, **kwargs) -> AlfworldEnv:
    return AlfworldEnv("valid_unseen", data_dir=games, task_types=TYPES, **kwargs)


@pytest.mark.timeout(180)
def test_expert_episode_wins_through_the_adapter(games):
    env = make(games, max_steps=200)
    assert isinstance(env, Env) and isinstance(env.semantics, ActionSemantics)
    assert env.name == "alfworld" and env.family == "household" and env.label == "ALFWorld-like"
    for ep in range(len(env)):
        obs, info = env.reset(episode=ep)
        assert "Your task is to:" in obs and info["task"] in obs
        assert info["won"] is False and info["score"] == 0.0 and info["alfworld_like"] is True
        assert info["admissible"] == env.admissible_actions() and info["admissible"]
        plan = env.expert_actions()
        assert plan and plan == env.expert_actions()  # cached, stable
        reward, won, truncated = 0.0, False, False
        for action in plan:
            obs, reward, won, truncated, info = env.step(action)
            if won or truncated:
                break
        assert won and not truncated and reward == 1.0 and info["won"] and info["score"] == 1.0
        with pytest.raises(InvalidInput, match="episode is over"):
            env.step("look")
    env.close()


@pytest.mark.timeout(300)
def test_agent_with_the_local_model_takes_valid_actions(games, local_llm):
    env = make(games)
    first, _ = env.reset(episode=0)
    traj = llm_steps(env, local_llm, 0)
    assert traj.environment == "alfworld" and traj.metadata["family"] == "household"
    assert traj.metadata["label"] == "ALFWorld-like"  # generated games say so in every record
    assert traj.task in first
    env.close()


@pytest.mark.timeout(120)
def test_reset_plays_the_same_game_every_time(games):
    env = make(games)
    first = env.reset(episode=1)
    env.step(env.admissible_actions()[0])
    again = env.reset(episode=1)
    assert first[0] == again[0] and first[1]["admissible"] == again[1]["admissible"]
    assert env.reset(episode=0)[1]["game_file"] != first[1]["game_file"]
    # generated games: the error says how to make more
    with pytest.raises(InvalidInput, match=r"out of range.*memp alfworld generate --split"):
        env.reset(episode=len(env))
    env.close()


@pytest.mark.timeout(120)
def test_truncates_at_max_steps(games):
    env = make(games, max_steps=2)
    env.reset(episode=0)
    _, _, won, truncated, _ = env.step("look")
    assert not won and not truncated
    _, reward, won, truncated, _ = env.step("look")
    assert truncated and not won and reward == 0.0
    env.close()


@pytest.mark.timeout(120)
def test_official_layout_without_manifest_is_real_data(games, tmp_path, monkeypatch):
    # $ALFWORLD_DATA/json_2.1.1/<split>/<task>/<trial>/ is where the official data lives.
    root = tmp_path / "alfworld_data"
    dest = root / "json_2.1.1" / "valid_seen"
    shutil.copytree(games, dest)
    (dest / MANIFEST).unlink()
    monkeypatch.setenv("ALFWORLD_DATA", str(root))
    env = AlfworldEnv("valid_seen", task_types=TYPES)
    assert env.label == "ALFWorld" and not env.alfworld_like and len(env) == 2
    _, info = env.reset(episode=0)
    assert info["alfworld_like"] is False
    # Unsolvable games are left out, as the official loader does.
    data = json.loads(env.games[1].read_text())
    data["solvable"] = False
    env.games[1].write_text(json.dumps(data))
    assert len(AlfworldEnv("valid_seen", task_types=TYPES)) == 1
    env.close()


@pytest.mark.timeout(30)
def test_missing_data_gives_a_clear_error_and_never_hangs(tmp_path, monkeypatch):
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    monkeypatch.setenv("MEMP_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(MissingData) as err:
        AlfworldEnv("valid_unseen")
    msg = str(err.value)
    assert "alfworld-download" in msg and "memp alfworld generate --split valid_unseen" in msg
    # a mistyped path is one line that says what to point it at
    with pytest.raises(MissingData) as err:
        AlfworldEnv("valid_unseen", data_dir=tmp_path / "nowhere")
    assert "does not exist" in str(err.value) and "\n" not in str(err.value)
    empty = tmp_path / "empty" / "json_2.1.1" / "train"
    empty.mkdir(parents=True)
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "empty"))
    with pytest.raises(MissingData, match="no ALFWorld games for split 'train'"):
        AlfworldEnv("train")


def test_semantics():
    s = AlfworldSemantics()
    assert s.is_navigation("go to cabinet 3") and not s.is_navigation("open cabinet 3")
    assert all(
        s.is_noop(a) for a in ("look", "inventory", "help", "examine mug 1", "examine desk 1")
    )
    assert not s.is_noop("take mug 1 from desk 1")
    assert s.failed("take mug 1 from desk 1", "Nothing happens.")
    assert not s.failed("go to desk 1", "You arrive at desk 1. On the desk 1, you see nothing.")
    assert s.location("go to cabinet 3") == "cabinet 3"
    assert s.location("take apple 1 from countertop 2") == "countertop 2"
    assert s.location("move apple 1 to fridge 1") == "fridge 1"
    assert s.location("put apple 1 in/on fridge 1") == "fridge 1"
    assert s.location("heat potato 1 with microwave 1") == "microwave 1"
    assert s.location("open drawer 2") == "drawer 2"
    assert s.location("use desklamp 1") is None and s.location("look") is None
    obs = "You arrive at countertop 1. On the countertop 1, you see a apple 1, a butterknife 2, and a mug 3."
    assert s.seen_objects(obs) == ["apple 1", "butterknife 2", "mug 3"]
    assert s.seen_objects(
        "You open the fridge 1. The fridge 1 is open. In it, you see a egg 2."
    ) == ["egg 2"]
    assert s.seen_objects("You arrive at desk 1. On the desk 1, you see nothing.") == []
    assert s.seen_objects("Looking quickly around you, you see a cabinet 1, and a sofa 1.") == []
    assert s.entity_type("apple 1") == "apple" and s.entity_type("soap bottle 12") == "soap bottle"


# --- the official game files (``official_alfworld``: six valid_seen games, one per task type)


@pytest.mark.timeout(300)
def test_official_games_load_from_the_game_files_alone(official_alfworld):
    env = AlfworldEnv("valid_seen", data_dir=official_alfworld)
    assert len(env) == 6 and env.label == "ALFWorld" and not env.alfworld_like
    assert not any((g.parent / "traj_data.json").exists() for g in env.games)
    # the task type is read from the task folder's name
    assert sorted(env.task_type(i) for i in range(len(env))) == sorted(TASK_TYPES)
    for i in range(len(env)):
        _obs, info = env.reset(episode=i)
        assert info["task"] and info["admissible"] and info["label"] == "ALFWorld"
        plan = env.expert_actions()
        for a in plan:
            *_, info = env.step(a)
        assert info["won"], (env.task_type(i), plan)
    env.close()


@pytest.mark.timeout(300)
def test_an_official_game_reads_the_same_however_it_was_loaded(official_alfworld):
    # the first reset after a load keeps the state the load built, a replay of the game
    # just played does not load it again: neither changes what the episode reads
    def played(env: AlfworldEnv, episode: int) -> list:
        obs, info = env.reset(episode=episode)
        seen = [obs, sorted(info["admissible"])]
        for a in env.expert_actions():
            obs, reward, *_, info = env.step(a)
            seen += [obs, sorted(info["admissible"]), reward]
        return seen

    fresh = []
    for i in (0, 1):
        env = AlfworldEnv("valid_seen", data_dir=official_alfworld)
        fresh.append(played(env, i))
        env.close()
    env = AlfworldEnv("valid_seen", data_dir=official_alfworld)
    assert [played(env, 0), played(env, 0), played(env, 1), played(env, 0)] == [
        fresh[0], fresh[0], fresh[1], fresh[0]
    ]  # fmt: skip
    assert fresh[0][-1] == 1.0
    env.close()


@pytest.mark.timeout(300)
def test_official_expert_goes_where_it_acts(official_alfworld):
    # official walkthroughs act on receptacles beside the one the agent went to; the
    # expert's plan visits each place it acts on, so what it picks up has been seen
    env = AlfworldEnv("valid_seen", data_dir=official_alfworld)
    sem = env.semantics
    for i in range(len(env)):
        env.reset(episode=i)
        here = None
        for a in env.expert_actions():
            if sem.is_navigation(a):
                here = sem.location(a)
            elif sem.location(a):
                assert sem.location(a) == here, a
    env.close()


@pytest.mark.timeout(300)
def test_archives_and_a_folder_of_archives_are_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMP_CACHE_DIR", str(tmp_path / "cache"))
    by_archive = AlfworldEnv("valid_seen", data_dir=SHARED / "valid_seen.tar.xz")
    monkeypatch.setenv("ALFWORLD_DATA", str(SHARED))
    by_folder = AlfworldEnv("valid_train")
    assert len(by_archive) == 140 and len(by_folder) == 200
    # interleaved order: the first 48 games are 8 of each task type
    inter = AlfworldEnv("valid_seen", data_dir=SHARED, order="interleaved")
    counts = Counter(inter.task_type(i) for i in range(48))
    assert set(counts.values()) == {8} and len(counts) == 6
    # the agent's worked example: the expert on the training split, same task type, the
    # game's own grammar (`move X to Y`)
    inter.reset(episode=0)
    example = inter.worked_example()
    assert example and example.startswith("Task: ") and "Action: move " in example
    assert inter.task_type(0).split("_")[0] in ("pick", "look")
    with pytest.raises(MissingData, match="does not exist"):
        AlfworldEnv("valid_seen", data_dir=tmp_path / "typo")
    with pytest.raises(InvalidInput, match="ALFWorld split"):
        AlfworldEnv("dev", data_dir=SHARED)


@pytest.mark.timeout(600)
def test_skill_episode_on_an_official_game(official_alfworld, tmp_path):
    # memory from the expert on official games, then an executable episode with no LLM
    from memp.distill import expert_trajectory
    from memp.embed.hashing import HashEmbedder
    from memp.execute import ExecConfig, SkillAgent, build_skill_memory
    from memp.memory import Memory

    env = AlfworldEnv("valid_seen", data_dir=official_alfworld, max_steps=30)
    trajs = [expert_trajectory(env, i) for i in range(len(env))]
    assert all(t.success for t in trajs)
    mem = Memory(tmp_path / "m.db", llm=None, embedder=HashEmbedder())
    assert len(build_skill_memory(mem, trajs, env.semantics, env=env)) == 6
    agent = SkillAgent(mem, None, config=ExecConfig.no_llm(max_steps=30))
    wins = [agent.run(env, i).success for i in range(len(env))]
    assert sum(wins) >= 5, wins
    env.close()


@pytest.mark.timeout(300)
def test_played_episodes_record_the_task_type(official_alfworld):
    # The worker writes the adapter's task type into the trajectory (reports break results
    # down by it); an environment whose benchmark names no types records none.
    from memp.experiment.config import AgentConfig, EnvConfig
    from memp.experiment.worker import CollectTask, WorkerContext, execute
    from memp.types import Trajectory

    env = AlfworldEnv("valid_seen", data_dir=official_alfworld)
    expected = env.task_type(2)
    env.close()
    ctx = WorkerContext()
    for name, options, want in (
        ("alfworld", {"data_dir": str(official_alfworld)}, expected),
        ("twx", {"game": "twc", "n": 3}, None),
    ):
        cfg = EnvConfig(name=name, train_split="valid_seen" if name == "alfworld" else "train",
                        options=options)  # fmt: skip
        res = execute(CollectTask(env=cfg, source="expert", episode=2, seed=0,
                                  agent=AgentConfig(max_steps=50), embedder="hash"), ctx)  # fmt: skip
        assert res.ok, res.error
        traj = Trajectory.model_validate_json(res.value)
        assert traj.success and traj.metadata.get("task_type") == want
