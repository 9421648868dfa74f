"""Task templates: masking, alignment and template matching (pure functions)."""

from __future__ import annotations

from memp.template import align, fill, induce, mask, match_key, normalize, rank_keys, slots_of

KEYS = [
    "put a hot {object} in {target}",
    "put a cool {object} in {target}",
    "put a {object} in {target}",
    "heat some {object} and put it in {target}",
    "look at {object} under the {target}",
    "put two {object} in {target}",
]
KNOWN = ["potato", "apple", "fridge", "countertop", "desklamp", "alarmclock", "cellphone", "sofa"]


def test_mask_names_slots_by_order_and_repeats_same_slot() -> None:
    key, binding = mask("Put a hot potato in countertop.", ["potato", "countertop"])
    assert key == "put a hot {object} in {target}"
    assert binding == {"object": "potato", "target": "countertop"}
    key, binding = mask("move the apple next to the apple tree", ["apple tree", "apple"])
    # longest phrase first, whole words only; a repeated phrase keeps its slot
    assert key == "move the {object} next to the {target}"
    assert binding == {"object": "apple", "target": "apple tree"}
    assert fill(key, binding) == "move the apple next to the apple tree"
    assert slots_of("{a} and {b} and {a}") == ["a", "b"]


def test_align_binds_slots_and_rejects_other_templates() -> None:
    assert align("put a hot apple in fridge.", KEYS[0]) == {"object": "apple", "target": "fridge"}
    assert align("put a cool apple in fridge", KEYS[0]) is None
    assert align("same x and y", "same {a} and {a}") is None
    assert align("same x and x", "same {a} and {a}") == {"a": "x"}
    assert normalize("  Put   A Hot Apple In Fridge. ") == "put a hot apple in fridge"


def test_match_key_prefers_the_specific_template() -> None:
    m = match_key("put a hot apple in fridge", KEYS, known_entities=KNOWN)
    assert m is not None and m.exact
    assert m.key == "put a hot {object} in {target}"
    assert m.binding == {"object": "apple", "target": "fridge"}
    # "put a {object} in {target}" would swallow "clean apple": rejected since "apple" is known
    assert match_key("put a clean apple in fridge", KEYS, known_entities=KNOWN) is None
    # an unknown entity still binds when the template fits exactly
    m = match_key("put two keychain in sofa", KEYS, known_entities=KNOWN)
    assert m is not None and m.binding == {"object": "keychain", "target": "sofa"}


def test_match_key_approximate_is_opt_in_and_weighs_rare_words() -> None:
    task = "cool some apple and put it in fridge"
    assert match_key(task, KEYS, known_entities=KNOWN) is None
    keys = [*KEYS, "cool some {object} and put it in {target}x"]  # near miss
    m = match_key(task, keys, known_entities=KNOWN, approximate=True)
    assert m is not None and not m.exact
    assert m.key.startswith("cool some")
    assert m.binding == {"object": "apple", "target": "fridge"}


def test_rank_keys_weighs_the_words_that_tell_task_types_apart() -> None:
    keys = [
        *KEYS,
        "clean some {object} and put it in {target}",
        "cool some {object} and put it in {target}",
    ]
    ranked = rank_keys("put a clean egg in sidetable", keys, known_entities=["egg", "sidetable"])
    # "clean" is rare among templates, so covering it outweighs sharing "put a ... in"
    assert ranked[0][1] == "clean some {object} and put it in {target}"
    assert all(len(slots_of(k)) == 2 for _, k in ranked)


def test_induce_makes_the_parameters_variations_differ_in_slots() -> None:
    keys = [
        "find a(n) animal. then, move it to the red {object} in the {target}",
        "find a(n) animal. then, move it to the green {object} in the {target}",
    ]
    key = induce(keys)
    # the colour is one parameter with the box next to it (no two slots touch)
    assert key == "find a(n) animal. then, move it to the {object} in the {target}"
    assert align("find a(n) animal. then, move it to the orange box in the hallway", key) == {
        "object": "orange box",
        "target": "hallway",
    }
    # a parameter named twice keeps one slot; a kept slot ties with a differing stretch
    key = induce(
        [
            "measure {object} above 10.0 degrees, then focus on {object}",
            "measure water b above 20.0 degrees, then focus on water b",
        ]
    )
    assert key == "measure {object} above {target} degrees, then focus on {object}"
    assert align("measure tin above 5.0 degrees, then focus on tin", key) == {
        "object": "tin",
        "target": "5.0",
    }
    assert align("measure tin above 5.0 degrees, then focus on lead", key) is None
    # parenthesised lists split at their punctuation
    key = induce(
        [
            "which of the two planes (paper, cloth) has the most friction",
            "which of the two planes (unknown material b, wood) has the most friction",
        ]
    )
    assert key == "which of the two planes ({object}, {target}) has the most friction"


def test_induce_needs_two_different_keys_with_shared_wording() -> None:
    assert induce(["put a {object} in {target}"] * 2) is None
    assert induce(["a b c", "x y z"]) is None
    # two phrasings of one task type are not one template with a parameter
    assert induce(["put a {object} in {target}", "put some {object} on {target}"]) is None
