"""Executable memory through ``Memory``: build strategy ``executable``, ``Memory.skill``
stepped by hand through a real environment (generated ALFWorld-like games), outcomes
counted on the procedures, and clear errors for bad input."""

from __future__ import annotations

import pytest

from memp.distill import expert_trajectory
from memp.embed.hashing import HashEmbedder
from memp.errors import InvalidInput
from memp.memory import Memory
from memp.skills.handle import Skill
from memp.template import align
from memp.types import Program, Trajectory
from skill_games import games_dir

# the games test_execute.py plays too (generated once, cached on disk): split -> (games, step limit)
SPLITS = {"train": (9, 200), "valid_unseen": (6, 50)}


@pytest.fixture(scope="module")
def envs():
    from memp.envs.alfworld import AlfworldEnv

    made = {
        s: AlfworldEnv(s, data_dir=games_dir(s, n), max_steps=m) for s, (n, m) in SPLITS.items()
    }
    yield made
    for env in made.values():
        env.close()


@pytest.fixture(scope="module")
def alf(envs, tmp_path_factory):
    """Executable memory built through Memory.add from the training games' expert runs."""
    train, held = envs["train"], envs["valid_unseen"]
    memory = Memory(tmp_path_factory.mktemp("exec") / "memp.db", embedder=HashEmbedder())
    experts = [expert_trajectory(train, i) for i in range(len(train))]
    procs = [memory.add(t, strategy="executable", env=train) for t in experts]
    keys = {p.task_key for p in procs}
    tasks = [held.reset(episode=i)[1]["task"] for i in range(len(held))]
    covered = [i for i, t in enumerate(tasks) if any(align(t, k) for k in keys)]
    yield dict(train=train, held=held, experts=experts, memory=memory, procs=procs, covered=covered)
    memory.close()


def _play_by_hand(memory: Memory, env, episode: int) -> tuple[Skill | None, bool, int]:
    """The agent loop owns the environment; the skill only says what to do next."""
    obs, info = env.reset(episode=episode)
    skill = memory.skill(info["task"], env=env)
    if skill is None:
        return None, False, 0
    won, steps = bool(info["won"]), 0
    while not won:
        action = skill.next_action(obs, info["admissible"])
        if action is None:
            break
        assert action in info["admissible"]
        obs, _, terminated, truncated, info = env.step(action)
        won, steps = bool(info["won"]), steps + 1
        if terminated or truncated:
            break
    skill.finish(won)
    return skill, won, steps


def test_executable_build_stores_typed_programs(alf) -> None:
    memory, sem = alf["memory"], alf["train"].semantics
    assert memory.count() == len(alf["experts"])
    for p, raw in zip(alf["procs"], alf["experts"], strict=True):
        assert p.build == "executable" and isinstance(p.program, Program)
        assert p.task_key == p.program.key and p.program.priors is not None
        assert p.trajectory is not None and p.trajectory.metadata["verified"] is True
        assert len(p.trajectory.steps) <= len(raw.steps)
        assert p.embedding is not None and p.facts
        stored = memory.get(p.id)
        assert stored.program == p.program  # the typed program survives the store
        assert not any(sem.is_navigation(str(s.action)) for s in p.program.steps if s.op == "act")
        assert memory.get_trajectory(raw.id).id == raw.id  # the raw trajectory is kept too
    # build() compiles without storing; semantics alone (no replay) is enough
    before = memory.count()
    p = memory.build(alf["experts"][0], strategy="executable", semantics=sem)
    assert isinstance(p.program, Program) and memory.count() == before


def test_skill_stepped_by_hand_wins_held_out_games_and_counts_outcomes(alf) -> None:
    memory, held = alf["memory"], alf["held"]
    covered = alf["covered"]
    assert covered, "no held-out game shares a template with the training games"
    results = []
    for i in covered:
        before = {p.id: p.usage for p in memory.list()}
        skill, won, steps = _play_by_hand(memory, held, i)
        assert skill is not None, held.reset(episode=i)[1]["task"]
        assert skill.procedure_id == skill.procedure_ids[0] and skill.binding
        assert set(skill.binding) == set(skill.program.slots)
        after = memory.get(skill.procedure_id).usage
        old = before[skill.procedure_id]
        assert after.retrieved == old.retrieved + 1
        assert (after.succeeded, after.failed) == (
            old.succeeded + int(won),
            old.failed + int(not won),
        )
        results.append((i, won, steps, skill.stopped))
    wins = sum(won for _, won, _, _ in results)
    assert wins >= max(1, len(results) - 1), results
    with pytest.raises(InvalidInput, match="already reported"):
        skill.finish(True)


def test_skill_run_plays_an_episode(alf) -> None:
    memory, held = alf["memory"], alf["held"]
    i = alf["covered"][0]
    task = held.reset(episode=i)[1]["task"]
    skill = memory.skill(task, environment=held.name, semantics=held.semantics)
    assert skill is not None
    pid = skill.procedure_id
    done = memory.get(pid).usage
    traj = skill.run(held, i)
    assert isinstance(traj, Trajectory) and traj.success
    assert all(s.actor == "skill" for s in traj.steps) and traj.prompt_tokens == 0
    assert traj.metadata["retrieved"] == skill.procedure_ids
    assert memory.get(pid).usage.succeeded == done.succeeded + 1
    # a skill is one episode; and it plays only its own task
    with pytest.raises(InvalidInput, match="already played"):
        skill.run(held, i)
    other = next(j for j in range(len(held)) if held.reset(episode=j)[1]["task"] != task)
    fresh = memory.skill(task, env=held)
    assert fresh is not None
    with pytest.raises(InvalidInput, match="not this skill's task"):
        fresh.run(held, other)


def test_no_matching_template_gets_no_skill(alf) -> None:
    memory, held = alf["memory"], alf["held"]
    assert memory.skill("launch the rocket to the moon", env=held) is None
    # another environment's name has no procedures at all
    assert (
        memory.skill("put a mug in desk", environment="nowhere", semantics=held.semantics) is None
    )


def test_bad_input_is_refused_clearly(alf, tmp_path) -> None:
    memory, train = alf["memory"], alf["train"]
    raw = alf["experts"][0]
    n = memory.count()
    with pytest.raises(InvalidInput, match="build strategy"):
        memory.add(raw, strategy="compiled", env=train)
    with pytest.raises(InvalidInput, match="env=") as e:
        memory.add(raw, strategy="executable")
    assert "semantics" in str(e.value)
    with pytest.raises(InvalidInput, match="task_key"):
        memory.add(raw, strategy="executable", env=train, task_key="put a {object} in {target}")
    failed = raw.model_copy(update={"success": False, "id": "failed-1"})
    with pytest.raises(InvalidInput, match="failed"):
        memory.add(failed, strategy="executable", env=train)
    with pytest.raises(InvalidInput, match="did not fail"):
        memory.add(failed, strategy="executable", env=train, keep_failed=True)
    assert memory.count() == n  # nothing stored by a refused build
    with pytest.raises(InvalidInput, match="needs the environment"):
        memory.skill(raw.task)
    with pytest.raises(InvalidInput, match="needs the environment"):
        memory.skill(raw.task, environment="alfworld")
    with pytest.raises(InvalidInput, match="non-empty"):
        memory.skill("  ", env=train)
    # the plain builders point to the way that has the semantics
    from memp.build import build_procedure

    with pytest.raises(InvalidInput, match="env="):
        build_procedure(raw, strategy="executable")


def test_client_refuses_an_environment_over_http(alf) -> None:
    from memp.client import Client

    c = Client("http://127.0.0.1:9", api_key="memp_x")  # refused before any request
    with c, pytest.raises(InvalidInput, match="cannot be sent over HTTP"):
        c.add(alf["experts"][0], strategy="executable", env=alf["train"])
