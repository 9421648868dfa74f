"""The real local model (Qwen2.5-Coder-1.5B via llama.cpp): grammar choice, abstraction,
determinism, prefix-cache reuse, clear errors."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from memp.errors import BackendError, InvalidInput
from memp.llm import make_llm
from memp.llm.ledger import UsageLedger

SYSTEM = (
    "You are a household robot. Each turn you get the task, what you observe and the list "
    "of admissible actions. Reply with exactly one admissible action."
)


@contextmanager
def _choice_method(llm, method: str):
    old, llm.choice_method = llm.choice_method, method
    try:
        yield
    finally:
        llm.choice_method = old


@pytest.fixture(scope="module")
def llm(local_llm):
    # Same loaded weights as the session fixture, but no completion cache: these tests
    # must exercise the model itself on every run.
    return make_llm("local", cache=False)


def test_choice_under_grammar_is_admissible_and_sensible(llm):
    admissible = [
        "go to countertop 1",
        "go to fridge 1",
        "go to sinkbasin 1",
        'examine "apple" 1',
        "inventory",
        "look",
        "take apple 1 from countertop 1",
    ]
    messages = [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": "Task: put a clean apple in the fridge.\n"
            "Observation: You are at countertop 1. On the countertop 1, you see an apple 1 "
            "and a knife 1. You are carrying nothing.\n"
            "Admissible actions:\n" + "\n".join(admissible) + "\nNext action:",
        },
    ]
    with UsageLedger() as ledger:
        out = llm.complete(messages, max_tokens=2, choices=admissible)
    assert out.text in admissible
    # The apple is right here and the robot carries nothing: take it.
    assert out.text == "take apple 1 from countertop 1"
    assert out.prompt_tokens > 50 and out.completion_tokens >= 1 and not out.cached
    assert len(ledger) == 1 and ledger.records[0].prompt_tokens == out.prompt_tokens
    # The GBNF grammar path (used when sampling) picks the same action greedily.
    with _choice_method(llm, "grammar"):
        assert llm.complete(messages, max_tokens=2, choices=admissible).text == out.text


def test_grammar_handles_long_lists_and_special_characters(llm):
    # 200 choices sharing long prefixes, plus quotes, backslashes and a newline.
    choices = [f"go to cabinet {i}" for i in range(1, 201)]
    weird = ['say "hello\\world"', "write line1\nline2"]
    choices += weird
    messages = [
        {"role": "user", "content": 'Repeat exactly this action: say "hello\\world"'},
    ]
    with _choice_method(llm, "grammar"):  # where the escaping matters
        out = llm.complete(messages, max_tokens=4, choices=choices)
    assert out.text == weird[0]
    assert llm.complete(messages, max_tokens=4, choices=choices).text == weird[0]


def test_abstracts_a_trajectory_into_a_general_script(llm):
    trajectory = "\n".join(
        [
            "Task: put a cool tomato in the microwave.",
            "> go to countertop 2 -> On the countertop 2, you see a tomato 1 and a spoon 3.",
            "> take tomato 1 from countertop 2 -> You pick up the tomato 1.",
            "> go to fridge 1 -> The fridge 1 is closed.",
            "> cool tomato 1 with fridge 1 -> You cool the tomato 1 using the fridge 1.",
            "> go to microwave 1 -> The microwave 1 is closed.",
            "> open microwave 1 -> You open the microwave 1.",
            "> put tomato 1 in/on microwave 1 -> You put the tomato 1 in/on the microwave 1. Task done.",
        ]
    )
    messages = [
        {
            "role": "system",
            "content": "You turn an agent's successful trajectory into a short, general "
            "procedure for the same kind of task: numbered steps, no object numbers, "
            "use placeholders like <object> and <receptacle>.",
        },
        {
            "role": "user",
            "content": "Example trajectory:\nTask: put a hot egg in the garbagecan.\n"
            "> go to fridge 1\n> open fridge 1\n> take egg 2 from fridge 1\n> go to microwave 1\n"
            "> heat egg 2 with microwave 1\n> go to garbagecan 1\n> put egg 2 in/on garbagecan 1\n"
            "Procedure:\n1. Find the <object> (check the fridge and countertops).\n2. Take the <object>.\n"
            "3. Go to the microwave and heat the <object> with it.\n4. Go to the <receptacle>.\n"
            "5. Put the <object> in the <receptacle>.\n\n"
            f"Trajectory:\n{trajectory}\nProcedure:",
        },
    ]
    out = llm.complete(messages, max_tokens=120, stop=["\n\n\n"])
    steps = [ln for ln in out.text.splitlines() if re.match(r"\s*\d+[.)]", ln)]
    text = out.text.lower()
    assert len(steps) >= 3, out.text
    assert "fridge" in text and ("cool" in text), out.text
    assert "microwave" in text or "<receptacle>" in text, out.text
    # Generalised: no concrete object numbers like "tomato 1" survive.
    assert not re.search(r"\btomato 1\b|\bcountertop 2\b", text), out.text


def test_greedy_is_deterministic_and_prefix_cache_is_reused(llm):
    base = [
        {"role": "system", "content": SYSTEM + " " + "Be brief. " * 40},
        {"role": "user", "content": "Task: find a mug. Observation: you see a cabinet 1. Next action:"},
    ]
    choices = ["go to cabinet 1", "look", "inventory"]
    first = llm.complete(base, max_tokens=8, choices=choices)
    # The same prompt again: llama.cpp keeps its KV cache, nearly nothing is re-evaluated.
    again = llm.complete(base, max_tokens=8, choices=choices)
    assert again.text == first.text
    assert llm.last_prompt_tokens_evaluated is not None and llm.last_prompt_tokens_evaluated <= 1
    # The next step of the episode shares the prefix: only the new turn is evaluated.
    longer = [
        *base,
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "Observation: the cabinet 1 is closed. Next action:"},
    ]
    with UsageLedger() as ledger:
        step2 = llm.complete(longer, max_tokens=8, choices=["open cabinet 1", "look"])
    assert step2.text in {"open cabinet 1", "look"}
    assert llm.last_prompt_tokens_evaluated < step2.prompt_tokens / 3
    assert ledger.records[0].prompt_tokens_evaluated == llm.last_prompt_tokens_evaluated


def test_a_long_system_part_seen_before_is_loaded_not_re_evaluated(llm):
    def episode(kind: str, rule: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": f"{SYSTEM} Worked example for {kind} tasks. " + rule * 30},
            {"role": "user", "content": "Task: find a mug. Observation: you see a cabinet 1. Next action:"},
        ]  # fmt: skip

    a = episode("cleaning", "Clean things at the sink before you put them away. ")
    b = episode("heating", "Heat things in the microwave before you put them away. ")
    choices = ["go to cabinet 1", "look", "inventory"]
    first = llm.complete(a, max_tokens=8, choices=choices)
    llm.complete(b, max_tokens=8, choices=choices)  # the KV cache now holds b's system part
    user_part = first.prompt_tokens - llm._system_end(a, llm.tokenize(llm.render(a)))
    assert 0 < user_part < 60
    # a's system part comes back from its snapshot: only the user turn is evaluated, and
    # the answer is the one the model gave when it evaluated everything
    again = llm.complete(a, max_tokens=8, choices=choices)
    assert again.text == first.text and llm.last_prompt_tokens_evaluated == user_part
    llm.complete(b, max_tokens=8, choices=choices)
    free = llm.complete(a, max_tokens=6)  # the free-generation path loads it too
    assert llm.last_prompt_tokens_evaluated == user_part
    # the same answer as with no snapshots at all
    old, llm.prefix_states = llm.prefix_states, 0
    try:
        llm.reset()
        assert llm.complete(a, max_tokens=6).text == free.text
        assert llm.last_prompt_tokens_evaluated == first.prompt_tokens
    finally:
        llm.prefix_states = old


def test_sampling_is_seedable(llm):
    msgs = [{"role": "user", "content": "Name a random household object, one word."}]
    a = llm.complete(msgs, max_tokens=4, temperature=1.0, seed=7)
    b = llm.complete(msgs, max_tokens=4, temperature=1.0, seed=7)
    assert a.text == b.text


def test_clear_errors(llm):
    with pytest.raises(InvalidInput, match="non-empty list"):
        llm.complete([])
    with pytest.raises(InvalidInput, match="role"):
        llm.complete([{"role": "robot", "content": "hi"}])
    with pytest.raises(InvalidInput, match="choices"):
        llm.complete([{"role": "user", "content": "hi"}], choices="look")
    with pytest.raises(BackendError, match="context holds"):
        llm.complete([{"role": "user", "content": "word " * 9000}], max_tokens=4)
