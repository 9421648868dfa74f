"""Query constraints read from the text of the 45 TravelPlanner training queries, checked
against what their gold plans and reference information show, and the errors a query
that cannot be read gets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from memp.envs.travelplanner import load_database, load_queries, parse_constraints
from memp.envs.travelplanner.evaluate import _cities
from memp.errors import InvalidInput

SHARED = Path(__file__).resolve().parents[3] / "shared" / "travelplanner"
pytestmark = pytest.mark.skipif(
    not (SHARED / "train_gold_plans.jsonl").is_file(), reason="no ../shared/travelplanner"
)


@pytest.fixture(scope="module")
def cities() -> dict[str, str]:
    return load_database(SHARED / "database").city_state


@pytest.fixture(scope="module")
def queries(cities):
    return load_queries(
        SHARED / "train_gold_plans.jsonl", cities, SHARED / "database" / "train_ref_info.jsonl"
    )


def test_every_training_query_parses_and_agrees_with_its_gold_plan(queries, cities) -> None:
    assert len(queries) == 45
    for i, q in enumerate(queries):
        plan = q.gold_plan
        assert plan, i
        route = [c for day in plan for c in _cities(day)]
        assert route[0] == q.org == route[-1], (i, q.org, route)
        visited = set(route) - {q.org}
        assert len(plan) == q.days and len(visited) == q.visiting_city_number, (i, q)
        if q.visiting_city_number == 1:
            assert visited == {q.dest}, (i, q.dest, visited)
        else:
            assert {cities[c] for c in visited} == {q.dest}, (i, q.dest, visited)
        # the reference information's flights leave on the first day, return on the last
        flight_days = [d.rsplit(" on ", 1)[1] for d, _ in q.reference if d.startswith("Flight ")]
        assert flight_days[0] == q.dates[0] and flight_days[-1] == q.dates[-1], (i, q.dates)
        assert len(q.dates) == q.days and q.budget > 0 and q.people_number >= 1


def test_the_levels_and_the_official_count_of_hard_constraints(queries) -> None:
    # the training split is 15 easy, 15 medium, 15 hard queries, in that order, each
    # level 5 x 3, 5 x 5 and 5 x 7 days
    assert [q.level for q in queries] == ["easy"] * 15 + ["medium"] * 15 + ["hard"] * 15
    assert Counter((q.level, q.days) for q in queries) == {
        (lv, d): 5 for lv in ("easy", "medium", "hard") for d in (3, 5, 7)
    }
    # the official script's denominator for the training split's hard micro rate
    assert sum(len(q.hard_asked) for q in queries) == 105
    assert Counter(k for q in queries for k in q.hard_asked) == {
        "valid_cost": 45,
        "valid_room_rule": 15,
        "valid_room_type": 17,
        "valid_cuisine": 16,
        "valid_transportation": 12,
    }


def test_some_queries_in_detail(queries) -> None:
    q = queries[0]
    assert (q.org, q.dest, q.days, q.people_number, q.budget) == (
        "St. Petersburg", "Rockford", 3, 1, 1700.0,
    )  # fmt: skip
    assert q.dates == ("2022-03-16", "2022-03-17", "2022-03-18")
    q = queries[26]  # "a group of 5 ... departing from Sault Ste. Marie towards Michigan"
    assert (q.org, q.dest, q.people_number, q.room_type) == (
        "Sault Ste. Marie", "Michigan", 5, "entire room",
    )  # fmt: skip
    q = queries[31]  # "visiting Washington" on a 3-day trip is the city, not the state
    assert (q.dest, q.house_rule, q.room_type, q.transportation) == (
        "Washington", "pets", "entire room", "no self-driving",
    )  # fmt: skip
    q = queries[35]  # "allow parties ... don't plan to self-drive ... host parties"
    assert (q.house_rule, q.transportation, q.dest) == ("parties", "no self-driving", "Minnesota")
    q = queries[40]  # "a party of 5" counts people; it is no house rule
    assert (q.people_number, q.house_rule) == (5, "pets")
    assert q.cuisine == ("Mexican", "Italian", "Mediterranean", "Indian")
    q = queries[44]
    assert (q.org, q.dest, q.transportation) == ("Minneapolis", "Ohio", "no flight")
    assert queries[6].local_constraint == {
        "house rule": None, "cuisine": None, "room type": None, "transportation": None,
    }  # fmt: skip
    assert queries[19].record()["date"] == ["2022-03-08", "2022-03-09", "2022-03-10"]


@pytest.mark.parametrize(
    ("text", "field", "why"),
    [
        ("Plan a 3-day trip from Ithaca to Charlotte from March 8th to March 10th, 2022.",
         "budget", "no dollar amount"),
        ("Plan a 3-day trip from Ithaca to Charlotte from March 8th to March 10th, with a budget of $900.",
         "dates", "year"),
        ("Plan a trip from Ithaca to Charlotte on March 8th, 2022, with a budget of $900.",
         "dates", "a first and a last day"),
        ("Plan a 5-day trip from Ithaca to Charlotte from March 8th to March 10th, 2022, budget $900.",
         "days", "says 5 days but its dates span 3"),
        ("Plan a 3-day trip from Atlantis to Charlotte from March 8th to March 10th, 2022, budget $900.",
         "origin", "no known city follows"),
        ("Plan a 3-day trip from Ithaca from March 8th to March 10th, 2022, budget $900.",
         "destination", "no city or state"),
        ("Plan a 5-day trip from Ithaca to 2 cities from March 8th to March 12th, 2022, budget $900.",
         "destination", "names their state"),
        ("Plan a 3-day trip from Ithaca to Charlotte from March 8th to March 10th, 2022, budget $900 or $1,000.",
         "budget", "several amounts"),
        ("Plan a 3-day trip from Ithaca to Charlotte from March 8th to March 10th, 2022, budget $900. "
         "We bring pets and want to smoke.", "house rule", "several are asked for"),
        ("Plan a 3-day trip from Ithaca to Charlotte from March 8th to March 10th, 2022, budget $900. "
         "We will not fly and will not drive ourselves.", "transportation", "both flights and self-driving"),
        ("Plan a 4-day trip from Ithaca to Charlotte from March 8th to March 11th, 2022, budget $900.",
         "visiting city number", "none of the benchmark's 3, 5 or 7"),
    ],
)  # fmt: skip
def test_a_query_that_cannot_be_read_says_which_field_and_why(text, field, why, cities) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_constraints(text, cities)
    msg = str(err.value)
    assert f"cannot read the {field} of the TravelPlanner query" in msg and why in msg, msg


def test_empty_text_and_a_bad_query_line_in_a_file(cities, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="non-empty text"):
        parse_constraints("  ", cities)
    bad = tmp_path / "train.jsonl"
    chat = {"messages": [{"role": "user", "content": "Query: a trip to somewhere nice, 2022"}]}
    bad.write_text(json.dumps(chat) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"query 0 of .*train.jsonl: cannot read the dates"):
        load_queries(bad, cities)


def test_reference_information_of_another_query_is_refused(cities, tmp_path: Path) -> None:
    lines = (SHARED / "train_gold_plans.jsonl").read_text(encoding="utf-8").splitlines()
    swapped = tmp_path / "train.jsonl"
    swapped.write_text(lines[1] + "\n" + lines[0] + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="is not for this query"):
        load_queries(swapped, cities, SHARED / "database" / "train_ref_info.jsonl")
