"""The ReAct agent: parsing, mapping, loops, memory hooks (real envs, real SQLite memory)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from memp.agents.react import ReActAgent, detect_loop, map_action, parse_action
from memp.embed.hashing import HashEmbedder
from memp.envs import make_env
from memp.llm.scripted import ScriptedLLM
from memp.memory import Memory
from memp.types import Procedure

FIXTURE = Path(__file__).parent / "envs" / "fixtures" / "travelplanner"


@pytest.mark.parametrize(
    ("answer", "thought", "action"),
    [
        ("> go to cabinet 1", None, "go to cabinet 1"),
        ("Action: open fridge 1.", None, "open fridge 1"),
        ('Thought: the apple is on the table\nAction: "take apple 1 from table 1"', "the apple is on the table", "take apple 1 from table 1"),
        ("  action:  `look around`!", None, "look around"),
        ("1. go north", None, "go north"),
        ("ACTION: 'inventory'", None, "inventory"),
        ("Action: FlightSearch[Ithaca, Charlotte, 2022-03-08].", None, "FlightSearch[Ithaca, Charlotte, 2022-03-08]"),
        ("Thought: done\nAction: Planner[Day 1:\nCurrent City: Charlotte]\nObservation: ok", "done", "Planner[Day 1:\nCurrent City: Charlotte]"),
    ],
)
def test_parse_action_tolerates_small_model_quirks(answer: str, thought: str | None, action: str) -> None:
    assert parse_action(answer) == (thought, action)


def test_map_action_exact_normalised_nearest() -> None:
    adm = ["go to cabinet 1", "go to countertop 1", "take apple 1 from countertop 1", "open fridge 1"]
    assert map_action("go to cabinet 1", adm) == ("go to cabinet 1", "exact")
    assert map_action("Go to the Cabinet 1", adm) == ("go to cabinet 1", "normalized")
    assert map_action("open the fridge", adm) == ("open fridge 1", "nearest")
    assert map_action("take apple", adm) == ("take apple 1 from countertop 1", "nearest")
    assert map_action("xyzzy", adm) == ("xyzzy", "free")
    assert map_action("anything", None) == ("anything", "free")


def test_detect_loop() -> None:
    assert detect_loop(["a", "a", "a"])
    assert detect_loop(["x", "open box", "close box", "open box", "close box", "open box", "close box"])
    assert not detect_loop(["a", "b", "a", "c"])


class RecordingLLM(ScriptedLLM):
    """A scripted LLM that also keeps the ``choices`` it was offered."""

    def __init__(self, responses) -> None:
        super().__init__(responses)
        self.offered: list[list[str] | None] = []

    def complete(self, messages, **kw):
        self.offered.append(list(kw["choices"]) if kw.get("choices") else None)
        return super().complete(messages, **kw)


@pytest.fixture(scope="module")
def twc():
    env = make_env("twx", "train", game="twc", params="numLocations=1,numItemsToPutAway=1")
    yield env
    env.close()


def test_retrieved_guidelines_reach_the_prompt_and_ids_are_recorded(tmp_path: Path, twc) -> None:
    mem = Memory(tmp_path / "memory.db", embedder=HashEmbedder())
    script = "1. Take the item that is out of place.\n2. Open the container where it belongs.\n3. Put the item in it."
    mine = mem.add_procedure(
        Procedure(task="Your task is to pick up objects, then place them in their usual locations in the environment.",
                  environment="twx", build="script", script=script)
    )
    other = mem.add_procedure(Procedure(task="Your task is to boil water.", environment="scienceworld", script="1. Heat it."))
    llm = RecordingLLM(lambda _messages: "look around")
    traj = ReActAgent(llm, memory=mem, max_steps=2).run(twc, 0)

    system = llm.calls[0][0]["content"]
    assert "Put the item in it." in system
    assert "Heat it." not in system  # procedures of another environment stay out
    assert traj.metadata["retrieved"] == [mine.id] and other.id not in traj.metadata["retrieved"]
    assert mem.get(mine.id).usage.retrieved == 1
    # The admissible list was offered as grammar choices, without the no-ops.
    assert llm.offered[0] and "open wardrobe" in llm.offered[0]
    assert "look around" not in llm.offered[0] and "inventory" not in llm.offered[0]
    mem.close()


def test_free_text_answers_are_mapped_onto_admissible_actions(twc) -> None:
    answers = ["> Action: 'Look around'.", "Thought: what do I carry?\nAction: inventory!", "open the wardrobe please"]
    agent = ReActAgent(ScriptedLLM(answers), use_choices=False, max_steps=3)
    traj = agent.run(twc, 0)
    assert traj.actions[:2] == ["look around", "inventory"]
    assert traj.steps[0].info["mapped"] in ("exact", "normalized")
    assert traj.steps[1].thought == "what do I carry?"
    assert traj.steps[2].info["mapped"] == "nearest" and traj.steps[2].action.startswith("open ")
    assert all(s.info["valid"] for s in traj.steps)
    assert all(s.actor == "llm" and s.prompt_tokens > 0 for s in traj.steps)
    assert traj.metadata["stopped"] == "max_steps" and traj.success is False


def test_a_loop_withholds_its_actions_and_never_ends_the_episode(twc) -> None:
    agent = ReActAgent(RecordingLLM(lambda _m: "look around"), max_steps=20, exclude_noops=False)
    traj = agent.run(twc, 0)
    # only the step budget ends an episode; each loop found withheld its action for a step
    assert traj.metadata["stopped"] == "max_steps" and len(traj.steps) == 20
    assert traj.metadata["loops"] >= 2
    offered = agent.llm.offered
    assert sum(o is not None and "look around" not in o for o in offered) >= 2


def test_prompt_only_appends_so_the_prefix_cache_holds(twc) -> None:
    agent = ReActAgent(RecordingLLM(lambda _m: "look around"), max_steps=6)
    seen: list[str] = []
    orig = agent.llm.complete

    def spy(messages, **kw):
        seen.append(render(messages))
        return orig(messages, **kw)

    def render(messages) -> str:
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)

    agent.llm.complete = spy  # type: ignore[method-assign]
    traj = agent.run(twc, 0)
    # each prompt is the one before it, its answer and the new turn: nothing already
    # evaluated is rewritten (the constrained answer is kept as decoded)
    for (a, b), step in zip(itertools.pairwise(seen), traj.steps, strict=False):
        assert b.startswith(a + f"<assistant>{step.action}</assistant><user>Observation: ")
    assert "Available actions: " in seen[0] and "Available actions: " not in seen[-1][len(seen[0]) :]


def test_multi_line_plan_is_submitted_on_travelplanner() -> None:
    env = make_env("travelplanner", "train", db_dir=FIXTURE / "database", queries=FIXTURE / "queries")
    env.reset(episode=0)
    plan_call = env.expert_actions()[-1]
    llm = ScriptedLLM([f"Thought: I have what I need.\nAction: {plan_call}\nObservation: (ignored)"])
    traj = ReActAgent(llm, max_steps=2).run(env, 0)
    assert traj.success is True and len(traj.steps) == 1
    assert traj.steps[0].action == plan_call


def test_history_window_slides_in_chunks_to_keep_the_prompt_prefix() -> None:
    agent = ReActAgent(ScriptedLLM(["x"]), history=12)
    starts = [agent.history_start(n) for n in range(40)]
    for n, start in enumerate(starts):
        assert 0 <= n - start <= 12 and (n <= 12 or n - start > 6)
    assert starts[13:19] == [6] * 6  # the same first step for six steps in a row


def test_noops_can_be_left_out_of_the_choices(twc) -> None:
    llm = RecordingLLM(lambda _m: "open wardrobe")
    ReActAgent(llm, max_steps=1, exclude_noops=True).run(twc, 0)
    offered = llm.offered[0]
    assert offered and not any(a.startswith(("look", "examine", "inventory")) for a in offered)


def test_the_starting_observation_stays_in_every_prompt(twc) -> None:
    first, _ = twc.reset(episode=0)
    llm = RecordingLLM(["inventory", "look around", "inventory"])
    traj = ReActAgent(llm, use_choices=False, max_steps=3).run(twc, 0)
    assert len(llm.calls) == 3
    for call, seen in zip(llm.calls, [[], traj.steps[:1], traj.steps[:2]], strict=True):
        assert call[1]["content"].startswith(f"Task: {traj.task}\nObservation: {first.strip()}")
        # Each later observation appears once, in the turn after its action.
        turns = call[2:]
        assert len(turns) == 2 * len(seen)
        for s, said, obs in zip(seen, turns[::2], turns[1::2], strict=True):
            assert said == {"role": "assistant", "content": f"Action: {s.action}"}
            assert obs["role"] == "user"
            assert obs["content"].startswith(f"Observation: {s.observation.strip()}")
