"""Build strategies: prompt families, step parsing, and abstraction by the real local model."""

from __future__ import annotations

import pytest

from memp.build import (
    FAMILIES,
    abstract_script,
    extract_facts,
    family_for,
    load_prompt,
    parse_steps,
    task_key_of,
)
from memp.errors import UnknownOption
from memp.types import Step, Trajectory


def test_every_family_has_three_templates_with_one_example():
    for family in FAMILIES:
        for name in ("script", "facts", "adjust"):
            text = load_prompt(family, name).template
            assert text.count("Example") == 1, (family, name)
            assert "$task" in text
    with pytest.raises(UnknownOption, match="cooking, generic, household, science, travel"):
        load_prompt("kitchen", "script")


def test_family_of_environment():
    assert family_for("alfworld") == "household"
    assert family_for("scienceworld") == "science"
    assert family_for("twx") == "cooking" and family_for("textworld") == "cooking"
    assert family_for("travelplanner") == "travel"
    assert family_for("webshop") == "generic"


def test_parse_steps_keeps_the_numbered_block():
    text = "Procedure:\n1. Find the mug.\n2) Put it away.\n\nTask: next one\n1. no"
    assert parse_steps(text) == ["Find the mug.", "Put it away."]
    assert parse_steps("no steps at all") == []


def test_task_key_from_entities():
    t = Trajectory(
        task="put some apple slice in fridge",
        metadata={"entities": {"object": "apple slice", "target": "fridge"}},
    )
    assert task_key_of(t) == "put some {object} in {target}"
    assert task_key_of(t, "given") == "given"


HOUSEHOLD = Trajectory(
    task="put a clean mug in coffeemachine",
    environment="alfworld",
    success=True,
    steps=[
        Step(action="go to countertop 1", observation="On the countertop 1, you see a mug 2."),
        Step(action="take mug 2 from countertop 1", observation="You pick up the mug 2."),
        Step(action="go to sinkbasin 1", observation="On the sinkbasin 1, you see nothing."),
        Step(action="clean mug 2 with sinkbasin 1", observation="You clean the mug 2."),
        Step(
            action="go to coffeemachine 1", observation="On the coffeemachine 1, you see nothing."
        ),
        Step(action="put mug 2 in/on coffeemachine 1", observation="You put the mug 2 in/on it."),
    ],
)


@pytest.mark.slow
def test_real_model_abstracts_a_general_script(local_llm):
    script, fell_back = abstract_script(local_llm, HOUSEHOLD)
    assert not fell_back
    steps = script.splitlines()
    assert 2 <= len(steps) <= 12 and steps[0].startswith("1. ")
    low = script.lower()
    assert "clean" in low and ("sink" in low)
    # Generalised: the concrete instance numbers of the trajectory are gone.
    assert "mug 2" not in low and "countertop 1" not in low
    facts = extract_facts(HOUSEHOLD.task, "alfworld", local_llm)
    assert 1 <= len(facts) <= 6 and any("mug" in f for f in facts)
