"""Text matching of skills on real ALFWorld semantics (no environment needed)."""

from __future__ import annotations

from memp.envs.alfworld import AlfworldSemantics
from memp.skills.text import Mentions, abstract, matches, read_span, similarity, words


def _mentions(*observations: str) -> Mentions:
    m = Mentions(AlfworldSemantics())
    for o in observations:
        m.observe("", o)
    return m


def test_abstract_names_slots_types_and_the_current_place() -> None:
    m = _mentions("On the countertop 1, you see a potato 1, and a knife 2.")
    m.add(["countertop 1"])
    out, used = abstract(
        "take potato 1 from countertop 1",
        m,
        place="countertop 1",
        slot_of_type={"potato": "object"},
    )
    assert out == "take {object} from {@}" and used == {"object": "potato 1"}
    out, used = abstract("take knife 2 from countertop 1", m, place=None, slot_of_type={})
    assert out == "take <knife> from <countertop>" and used == {}
    assert m.named("take knife 2 from countertop 1") == {"knife 2", "countertop 1"}


def test_wildcards_match_types_or_words() -> None:
    assert matches("put {object} in/on <cabinet>", "put {object} in/on <*>")
    assert matches("cook purple potato with oven", "cook <*> with oven")
    assert not matches("put {object} in/on <cabinet>", "put {object} in/on {target}")


def test_read_span_finds_a_value_only_a_reading_named() -> None:
    reading = [("read cookbook", words("Ingredients: purple potato. Directions: slice it"))]
    span = read_span("slice purple potato with <knife>", reading)
    assert span == (1, 3, 0, 1)
    # the task's own words are never read values
    assert read_span("slice purple potato with <knife>", reading, {"purple", "potato"}) is None


def test_similarity_is_token_overlap() -> None:
    assert similarity("open <fridge>", "open <fridge>") == 1.0
    assert similarity("open <fridge>", "close <fridge>") == 0.5
    assert similarity("", "open") == 0.0


def test_a_typed_thing_is_not_grounded_to_another_thing_where_the_skill_stands() -> None:
    from memp.skills.text import same_entities

    # {@} is the place: "take <fork> from {@}" names a fork, so bread does not do.
    assert not same_entities("take <bread> from {@}", "take <fork> from {@}")
    assert same_entities("take <fork> from {@}", "take <fork> from {@}")
    # A task slot names what is acted on; the other things may differ.
    assert same_entities("take {object} from <drawer>", "take {object} from <countertop>")


def test_a_part_named_after_the_task_s_thing_keeps_the_slot_inside() -> None:
    from memp.envs.scienceworld import SEMANTICS

    m = Mentions(SEMANTICS)
    m.add(["red light bulb", "cathode in red light bulb", "yellow wire", "electric motor"])
    m.add(["cathode in electric motor"])
    action = "connect yellow wire terminal 2 to cathode in red light bulb"
    form, used = abstract(action, m, place="workshop", slot_of_type={"bulb": "object"})
    assert form == "connect <wire> terminal 2 to cathode in {object}"
    assert used == {"object": "red light bulb"}
    # another variation's thing, the same part: the same form
    other = "connect yellow wire terminal 2 to cathode in electric motor"
    assert abstract(other, m, place="workshop", slot_of_type={"motor": "object"})[0] == form
    # a part of something that is not the task's thing stays a typed thing
    assert abstract(action, m, place="workshop", slot_of_type={})[0].endswith("<cathode>")
