"""TravelPlanner plans and the benchmark's evaluation (Xie et al., 2024).

A plan is a list of days, each a dict with the keys of :data:`PLAN_KEYS` (the
official day-by-day text format or a JSON / Python list of such dicts is parsed by
:func:`parse_plan`). :class:`Evaluator` checks a plan against a :class:`Query` and a
:class:`Database` with the benchmark's 8 commonsense constraints and 5 hard
constraints; :func:`aggregate` turns many :class:`Verdict` s into the published rates:
delivery, commonsense and hard micro / macro pass rates, and the final pass rate.

The rules are those of the paper and of its public evaluation script, rewritten here;
each method's docstring states its rule and where this code is deliberately stricter
than the script (so that a plan cannot pass by a quirk of string handling).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from memp.envs.travelplanner.constraints import BANNED_BY_RULE, room_type_ok
from memp.envs.travelplanner.database import (
    Database,
    _num,
    _parse_literal,
    _present,
    before_paren,
    from_to,
    name_city,
)

if TYPE_CHECKING:
    from memp.envs.travelplanner.query import Query

PLAN_KEYS = (
    "current_city",
    "transportation",
    "breakfast",
    "attraction",
    "lunch",
    "dinner",
    "accommodation",
)
MEALS = ("breakfast", "lunch", "dinner")
# The official keys of the constraints and the paper's names for them.
COMMONSENSE = {
    "is_valid_information_in_sandbox": "Within Sandbox",
    "is_not_absent": "Complete Information",
    "is_valid_information_in_current_city": "Within Current City",
    "is_reasonable_visiting_city": "Reasonable City Route",
    "is_valid_restaurants": "Diverse Restaurants",
    "is_valid_attractions": "Diverse Attractions",
    "is_valid_transportation": "Non-conf. Transportation",
    "is_valid_accommodation": "Minimum Nights Stay",
}
HARD = {
    "valid_cost": "Budget",
    "valid_room_rule": "Room Rule",
    "valid_room_type": "Room Type",
    "valid_cuisine": "Cuisine",
    "valid_transportation": "Transportation",
}
# what a plan may write in a day it does not need (the official planner prompt's words)
_UNNEEDED = "You don't need to fill in the information for this or later days."


# -- plans as text --------------------------------------------------------------------


def parse_plan(text: str) -> list[dict[str, Any]]:
    """The official day-by-day text format (or a JSON / Python list of days) -> list of day dicts."""
    text = text.strip()
    if text.startswith("["):
        days = _parse_literal(text)
        return [d for d in days if isinstance(d, dict) and "current_city" in d]
    days: list[dict[str, Any]] = []
    # Both spellings of the official prompts: "Day 1:" and "Day: 1".
    for block in re.split(r"(?im)^\s*Day\s*:?\s*(\d+)\s*:?\s*$", text)[1:]:
        if block.strip().isdigit():
            days.append({"days": int(block.strip())})
            continue
        if not days:
            continue
        for line in block.splitlines():
            if ":" not in line:
                continue
            key, value = line.split(":", 1)
            key = key.strip().lower().replace(" ", "_")
            if key in PLAN_KEYS:
                days[-1][key] = value.strip()
    for d in days:
        for k in PLAN_KEYS:
            d.setdefault(k, "-")
    return days


def format_plan(days: list[dict[str, Any]]) -> str:
    blocks = []
    for i, d in enumerate(days, 1):
        lines = [f"Day {d.get('days', i)}:"]
        for k in PLAN_KEYS:
            lines.append(f"{k.replace('_', ' ').title()}: {d.get(k, '-')}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def as_plan(plan: str | Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A plan given as text or as days -> its non-empty days ([] when there is none)."""
    if plan is None:
        return []
    if isinstance(plan, str):
        try:
            return parse_plan(plan)
        except (ValueError, SyntaxError):
            return []
    return [dict(d) for d in plan if isinstance(d, dict) and d]


# -- the pieces of a day ---------------------------------------------------------------

_ROUTE = re.compile(r"from\s+\S")


def _travels(day: dict[str, Any]) -> bool:
    """The day moves between cities ("from A to B" as its current city)."""
    return bool(_ROUTE.search(str(day.get("current_city", ""))))


def _cities(day: dict[str, Any]) -> list[str]:
    cur = str(day.get("current_city", ""))
    if _travels(day):
        a, b = from_to(cur)
        return [c for c in (a, b) if c]
    return [before_paren(cur)]


def _attractions(value: Any) -> list[str]:
    """The ';'-separated attractions of a day (the trailing ';' of the official format is optional)."""
    return [a.strip() for a in str(value).split(";") if a.strip()] if _present(value) else []


def _mode(value: str) -> str | None:
    low = value.lower()
    if "taxi" in low:
        return "Taxi"
    if "self-driving" in low:
        return "Self-driving"
    if "flight" in low:
        return "Flight"
    return None


def _flight_number(value: str) -> str | None:
    m = re.search(r"Flight Number:\s*([^,\s]+)", value, re.I)
    return m.group(1) if m else None


def _leg(day: dict[str, Any], value: str) -> tuple[str | None, str | None]:
    """Where a transportation entry goes: its own "from A to B", else the day's."""
    org, dest = from_to(value)
    if org is None or dest is None:
        org, dest = from_to(str(day.get("current_city", "")))
    return org, dest


class Check(NamedTuple):
    """One constraint's outcome: passed (None: the query does not ask for it) and why not."""

    passed: bool | None
    reason: str | None = None


Result = Check  # the name earlier versions used

_OK = Check(True)
_NOT_ASKED = Check(None)


@dataclass
class Verdict:
    """A plan's evaluation against one query.

    ``commonsense`` has the 8 commonsense checks (empty when no plan was delivered);
    ``hard`` the 5 hard checks, or None when they were not run: the benchmark checks
    hard constraints only for a complete plan within the sandbox, and counts them as
    failed otherwise. ``hard_asked`` names the hard constraints the query has.
    """

    delivered: bool
    commonsense: dict[str, Check] = field(default_factory=dict)
    hard: dict[str, Check] | None = None
    hard_asked: tuple[str, ...] = ("valid_cost",)
    cost: float | None = None
    level: str | None = None
    days: int | None = None

    @property
    def commonsense_pass(self) -> bool:
        return self.delivered and all(c.passed is not False for c in self.commonsense.values())

    @property
    def hard_pass(self) -> bool:
        return self.hard is not None and all(c.passed is not False for c in self.hard.values())

    @property
    def final_pass(self) -> bool:
        return self.commonsense_pass and self.hard_pass

    def failed(self) -> dict[str, str]:
        """Each failed constraint (official key) and why."""
        checks = {**self.commonsense, **(self.hard or {})}
        out = {k: c.reason or "failed" for k, c in checks.items() if c.passed is False}
        if self.delivered and self.hard is None:
            out["hard constraints"] = "not checked: the plan is incomplete or outside the sandbox"
        if not self.delivered:
            out["delivery"] = "no plan was delivered"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "commonsense": {k: list(c) for k, c in self.commonsense.items()},
            "hard": None if self.hard is None else {k: list(c) for k, c in self.hard.items()},
            "commonsense_pass": self.commonsense_pass,
            "hard_pass": self.hard_pass,
            "final_pass": self.final_pass,
            "cost": self.cost,
        }


class Evaluator:
    """The benchmark's commonsense and hard constraints, on a :class:`Database`.

    Flights are looked up in the query's reference information and, when the database
    has the flights table, in it too.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def flights(self, q: Query, number: str) -> list[dict[str, str]]:
        ref = [r for r in q.flights if r.get("Flight Number") == number]
        return ref + self.db.flights_numbered(number)

    def _place(self, table: str, entry: Any) -> dict[str, str] | None:
        return self.db.find(table, *name_city(str(entry)))

    @staticmethod
    def _trip(q: Query, plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # days past the query's length are not the trip's and are not judged
        return plan[: q.days]

    # -- commonsense -------------------------------------------------------------------
    def within_sandbox(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Within Sandbox: everything the plan names exists in the data.

        A flight's number must be a flight between the day's two cities (the leg of the
        entry itself, else of the day's "from A to B"); a self-driving or taxi leg must
        have a route in the distance matrix that is not a multi-day drive; every
        restaurant, attraction and accommodation, written "Name, City", must be a row
        of that city whose name contains the written name.
        """
        for i, day in enumerate(self._trip(q, plan), 1):
            value = str(day.get("transportation", "-"))
            if _present(value):
                org, dest = _leg(day, value)
                mode = _mode(value)
                if "flight number" in value.lower():
                    number = _flight_number(value) or ""
                    legs = [
                        r for r in self.flights(q, number)
                        if r.get("OriginCityName") == org and r.get("DestCityName") == dest
                    ]  # fmt: skip
                    if not legs:
                        return Check(
                            False, f"The flight number in day {i} is invalid in the sandbox."
                        )
                elif mode in ("Self-driving", "Taxi"):
                    how = mode.lower()
                    if org is None or dest is None or self.db.drive(org, dest, how)["cost"] is None:
                        return Check(False, f"The {how} in day {i} is invalid in the sandbox.")
            for key in MEALS:
                if _present(day.get(key)) and self._place("restaurants", day[key]) is None:
                    return Check(False, f"The {key} in day {i} is invalid in the sandbox.")
            for a in _attractions(day.get("attraction")):
                if self._place("attractions", a) is None:
                    return Check(False, f"The attraction {a} in day {i} is invalid in the sandbox.")
            acc = day.get("accommodation")
            if _present(acc) and self._place("accommodations", acc) is None:
                return Check(False, f"The accommodation in day {i} is invalid in the sandbox.")
        return _OK

    def complete_information(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Complete Information: no key information is left out.

        The plan has the query's number of days and visits the query's number of
        cities (the first day leaving the origin); each day has every field; a day of
        travel ("from A to B") names its transportation; a day in one city has an
        attraction and all three meals; every day but the last has an accommodation;
        and at least half of the information is filled in. That last share counts
        every filled field of a day (day number and current city included) against six
        per day, as the official script does.
        """
        trip = self._trip(q, plan)
        real = [d for d in trip if d and d.get("current_city") != _UNNEEDED]
        if len(real) != q.days:
            return Check(False, f"The number of days should be {q.days}.")
        visited: set[str] = set()
        for i, day in enumerate(trip):
            if _travels(day) and i == 0 and _cities(day)[0] != q.org:
                return Check(False, f"The first day's city should be {q.org}.")
            visited.update(_cities(day))
        visited.discard(q.org)
        if len(visited) != q.visiting_city_number:
            return Check(
                False, f"The number of visiting cities should be {q.visiting_city_number}."
            )
        filled = 0
        for i, day in enumerate(trip, 1):
            missing = [k for k in PLAN_KEYS[1:] if k not in day]
            if missing:
                return Check(False, f"No {missing[0]} information in day {i}.")
            cur = str(day.get("current_city", ""))
            moving = "from " in cur or " to " in cur
            if moving and not _present(day["transportation"]):
                return Check(False, f"No transportation in day {i} is not allowed.")
            if not moving and not _present(day["attraction"]):
                return Check(False, f"No attraction in day {i} is not allowed.")
            if i != q.days and not _present(day["accommodation"]):
                return Check(False, f"No accommodation in day {i} is not allowed.")
            if "from " not in cur and not all(_present(day[k]) for k in MEALS):
                return Check(False, f"No meal in day {i} is not allowed.")
            filled += sum(1 for v in day.values() if v and v != "-")
        if filled / (6 * q.days) < 0.5:
            return Check(False, "The absent information is more than 50%.")
        return _OK

    def within_current_city(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Within Current City: each day's activities are in that day's city (or cities).

        A day's transportation names all of the day's cities; each meal and attraction
        names one of them; the accommodation is in the day's last city (where the night
        is spent). The official script applies this only to days of travel (on other
        days it compares single characters); here every day is checked.
        """
        for i, day in enumerate(self._trip(q, plan), 1):
            cities = _cities(day)
            value = day.get("transportation")
            if _present(value) and any(c not in str(value) for c in cities):
                return Check(False, f"The transportation in day {i} is invalid city choice.")
            for key in MEALS:
                if _present(day.get(key)) and not any(c in str(day[key]) for c in cities):
                    return Check(False, f"The {key} in day {i} is invalid city choice.")
            for a in _attractions(day.get("attraction")):
                if not any(c in a for c in cities):
                    return Check(False, f"The attraction in day {i} is invalid city choice.")
            acc = day.get("accommodation")
            if _present(acc) and cities and cities[-1] not in str(acc):
                return Check(False, f"The accommodation in day {i} is invalid city choice.")
        return _OK

    def reasonable_city_route(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Reasonable City Route: the trip is a closed loop through known cities.

        The route (the day's city, or both cities of a day of travel) starts at the
        origin on day 1 and ends where it started; it has at least three stops; each
        city between the ends is visited in one unbroken stretch of two or more stops
        and never returned to; every city is in the database's city list, and on trips
        longer than three days every city between the ends is in the query's state.
        """
        route: list[str] = []
        for i, day in enumerate(self._trip(q, plan)):
            cities = _cities(day)
            if i == 0 and _travels(day) and cities[0] != q.org:
                return Check(False, f"The first day's city should be {q.org}.")
            route += cities
        if not route or route[0] != route[-1]:
            return Check(False, "The trip should be a closed circle.")
        if not _one_stretch_each(route):
            return Check(False, "The city sequence is invalid.")
        for idx, city in enumerate(route):
            if city not in self.db.city_state:
                return Check(False, f"{city} is not a valid city.")
            inner = 0 < idx < len(route) - 1
            if inner and q.days > 3 and self.db.city_state[city] != q.dest:
                return Check(False, f"{city} is not in {q.dest}.")
        return _OK

    def diverse_restaurants(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Diverse Restaurants: no restaurant is chosen twice (any meal, any day)."""
        seen: set[str] = set()
        for i, day in enumerate(self._trip(q, plan), 1):
            for key in MEALS:
                value = day.get(key)
                if not _present(value):
                    continue
                if value in seen:
                    return Check(False, f"The restaurant in day {i} {key} is repeated.")
                seen.add(value)
        return _OK

    def diverse_attractions(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Diverse Attractions: no attraction is visited twice."""
        seen: set[str] = set()
        for i, day in enumerate(self._trip(q, plan), 1):
            for a in _attractions(day.get("attraction")):
                if a in seen:
                    return Check(False, f"The attraction '{a}' in day {i} is repeated.")
                seen.add(a)
        return _OK

    def non_conflicting_transportation(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Non-conflicting Transportation: a trip that self-drives uses no flight and no
        taxi (the car has to come back); day 1 must say how the trip starts."""
        trip = self._trip(q, plan)
        if not trip or not _present(trip[0].get("transportation")):
            return Check(False, "The transportation in day 1 should not be empty.")
        modes = {_mode(str(d["transportation"])) for d in trip if _present(d.get("transportation"))}
        if "Self-driving" in modes and modes & {"Flight", "Taxi"}:
            return Check(False, "The transportation is conflicting.")
        return _OK

    def minimum_nights_stay(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Minimum Nights Stay: each stay (consecutive nights in one accommodation) lasts
        at least the accommodation's minimum nights. As in the official script, a name
        that matches several rows of the city is not judged."""
        stays: list[list[Any]] = []
        for i, day in enumerate(self._trip(q, plan), 1):
            if "accommodation" not in day:
                return Check(False, f"No accommodation information in day {i}.")
            acc = day["accommodation"]
            if stays and stays[-1][0] == acc:
                stays[-1][1] += 1
            else:
                stays.append([acc, 1])
        for acc, nights in stays:
            if not _present(acc):
                continue
            rows = self.db.matches("accommodations", *name_city(str(acc)))
            if len(rows) == 1 and nights < _num(rows[0].get("minimum nights", 0)):
                return Check(
                    False, f"The accommodation {acc} does not obey the minimum nights rule."
                )
        return _OK

    def commonsense(self, q: Query, plan: list[dict[str, Any]]) -> dict[str, Check]:
        return {
            "is_valid_information_in_sandbox": self.within_sandbox(q, plan),
            "is_not_absent": self.complete_information(q, plan),
            "is_valid_information_in_current_city": self.within_current_city(q, plan),
            "is_reasonable_visiting_city": self.reasonable_city_route(q, plan),
            "is_valid_restaurants": self.diverse_restaurants(q, plan),
            "is_valid_attractions": self.diverse_attractions(q, plan),
            "is_valid_transportation": self.non_conflicting_transportation(q, plan),
            "is_valid_accommodation": self.minimum_nights_stay(q, plan),
        }

    # -- hard --------------------------------------------------------------------------
    def total_cost(self, q: Query, plan: list[dict[str, Any]]) -> float:
        """What the trip costs the group: each flight's price per person, one car per
        five people (self-driving) or one taxi per four, each meal's average cost per
        person, and each night's price per room (people / the room's maximum
        occupancy, rounded up). Entries the data does not know cost nothing."""
        people = q.people_number
        total = 0.0
        for day in self._trip(q, plan):
            value = str(day.get("transportation", "-"))
            if _present(value):
                org, dest = _leg(day, value)
                mode = _mode(value)
                if org is not None and dest is not None:
                    if "flight number" in value.lower():
                        rows = self.flights(q, _flight_number(value) or "")
                        total += _num(rows[0]["Price"]) * people if rows else 0
                    elif mode == "Self-driving":
                        total += (
                            self.db.drive(org, dest, "self-driving")["cost"] or 0
                        ) * math.ceil(people / 5)
                    elif mode == "Taxi":
                        total += (self.db.drive(org, dest, "taxi")["cost"] or 0) * math.ceil(
                            people / 4
                        )
            for key in MEALS:
                row = self._place("restaurants", day[key]) if _present(day.get(key)) else None
                if row is not None:
                    total += _num(row["Average Cost"]) * people
            acc = day.get("accommodation")
            row = self._place("accommodations", acc) if _present(acc) else None
            if row is not None:
                rooms = math.ceil(people / max(1.0, _num(row["maximum occupancy"])))
                total += _num(row["price"]) * rooms
        return total

    def budget(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Budget: the total cost (:meth:`total_cost`) is within the query's budget."""
        cost = self.total_cost(q, plan)
        if cost <= q.budget:
            return _OK
        return Check(False, f"The total cost {cost:g} is over the budget {q.budget:g}.")

    def _stays(self, q: Query, plan: list[dict[str, Any]]) -> list[tuple[int, dict[str, str]]]:
        out = []
        for i, day in enumerate(self._trip(q, plan), 1):
            acc = day.get("accommodation")
            row = self._place("accommodations", acc) if _present(acc) else None
            if row is not None:
                out.append((i, row))
        return out

    def room_rule(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Room Rule: no accommodation's house rules forbid what the query needs
        (smoking, parties, children under 10, visitors, pets)."""
        if q.house_rule is None:
            return _NOT_ASKED
        banned = BANNED_BY_RULE[q.house_rule]
        for i, row in self._stays(q, plan):
            if banned in row.get("house_rules", ""):
                return Check(
                    False,
                    f"The accommodation in day {i} says {banned!r}; the query needs {q.house_rule}.",
                )
        return _OK

    def room_type(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Room Type: every accommodation is of the asked type: "entire room" an entire
        home/apt, "private room" a private room, "shared room" a shared room, "not
        shared room" anything but a shared room."""
        if q.room_type is None:
            return _NOT_ASKED
        for i, row in self._stays(q, plan):
            got = row.get("room type", "")
            if not room_type_ok(q.room_type, got):
                return Check(
                    False,
                    f"The accommodation in day {i} is a {got}; the query asks for {q.room_type}.",
                )
        return _OK

    def cuisine(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Cuisine: every asked cuisine is served by at least one of the trip's
        restaurants outside the origin city. (The official script skips the rest of a
        day after a meal in the origin; here only that meal is skipped.)"""
        if not q.cuisine:
            return _NOT_ASKED
        served: set[str] = set()
        for day in self._trip(q, plan):
            for key in MEALS:
                if not _present(day.get(key)):
                    continue
                name, city = name_city(str(day[key]))
                row = None if city == q.org else self.db.find("restaurants", name, city)
                if row is not None:
                    served |= {c for c in q.cuisine if c in row.get("Cuisines", "")}
        missing = [c for c in q.cuisine if c not in served]
        return Check(False, f"The cuisine {missing[0]} is not satisfied.") if missing else _OK

    def transportation(self, q: Query, plan: list[dict[str, Any]]) -> Check:
        """Transportation: no leg uses the mode the query rules out (flights or self-driving)."""
        if q.transportation is None:
            return _NOT_ASKED
        banned = {"no flight": "Flight", "no self-driving": "Self-driving"}[q.transportation]
        for i, day in enumerate(self._trip(q, plan), 1):
            value = day.get("transportation")
            if _present(value) and _mode(str(value)) == banned:
                return Check(
                    False, f"Day {i} uses {banned.lower()}; the query asks for {q.transportation}."
                )
        return _OK

    def hard(self, q: Query, plan: list[dict[str, Any]]) -> dict[str, Check]:
        return {
            "valid_cost": self.budget(q, plan),
            "valid_room_rule": self.room_rule(q, plan),
            "valid_room_type": self.room_type(q, plan),
            "valid_cuisine": self.cuisine(q, plan),
            "valid_transportation": self.transportation(q, plan),
        }

    def evaluate(self, q: Query, plan: str | Sequence[dict[str, Any]] | None) -> Verdict:
        """The plan's :class:`Verdict`; hard constraints only for a complete plan within
        the sandbox, as the benchmark does."""
        days = as_plan(plan)
        verdict = Verdict(delivered=bool(days), hard_asked=q.hard_asked,
                          level=q.level, days=q.days)  # fmt: skip
        if not days:
            return verdict
        verdict.commonsense = self.commonsense(q, days)
        grounded = verdict.commonsense["is_not_absent"].passed and (
            verdict.commonsense["is_valid_information_in_sandbox"].passed
        )
        if grounded:
            verdict.hard = self.hard(q, days)
        verdict.cost = self.total_cost(q, days)
        return verdict


def _one_stretch_each(route: list[str]) -> bool:
    """At least three stops; each city between the ends in one stretch of >= 2 stops,
    never come back to."""
    if len(route) < 3:
        return False
    seen: set[str] = set()
    i = 0
    while i < len(route):
        city, start = route[i], i
        if city in seen and 0 < i < len(route) - 1:
            return False
        while i < len(route) and route[i] == city:
            i += 1
        if i - start == 1 and 0 < start < len(route) - 1:
            return False
        seen.add(city)
    return True


# -- the public API ----------------------------------------------------------------------


def evaluate_plan(
    query: Query, plan: str | Sequence[dict[str, Any]] | None, db: Database | None = None
) -> Verdict:
    """Evaluate ``plan`` (text or days) for ``query`` on ``db`` (default: the database
    :func:`~memp.envs.travelplanner.env.default_database` finds)."""
    if db is None:
        from memp.envs.travelplanner.env import default_database

        db = default_database()
    return Evaluator(db).evaluate(query, plan)


@dataclass(frozen=True)
class Rates:
    """The benchmark's rates over a set of queries (fractions in [0, 1]).

    Micro rates count constraints: passed commonsense checks over 8 per query, passed
    hard checks over each query's applicable hard constraints (a plan not delivered,
    or whose hard constraints were not checked, passes none). Macro rates count
    queries whose every applicable constraint passed; final counts queries passing both.
    """

    n: int
    delivery: float
    commonsense_micro: float
    commonsense_macro: float
    hard_micro: float
    hard_macro: float
    final: float
    # official key -> (passed, applicable)
    per_constraint: dict[str, tuple[int, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {
            "Delivery Rate": self.delivery,
            "Commonsense Constraint Micro Pass Rate": self.commonsense_micro,
            "Commonsense Constraint Macro Pass Rate": self.commonsense_macro,
            "Hard Constraint Micro Pass Rate": self.hard_micro,
            "Hard Constraint Macro Pass Rate": self.hard_macro,
            "Final Pass Rate": self.final,
        }


def aggregate(verdicts: Iterable[Verdict]) -> Rates:
    """The published rates of a set of verdicts (one per query)."""
    vs = list(verdicts)
    n = len(vs)
    if n == 0:
        return Rates(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    per: dict[str, list[int]] = {k: [0, 0] for k in (*COMMONSENSE, *HARD)}
    for v in vs:
        for k in COMMONSENSE:
            per[k][0] += v.commonsense.get(k, _NOT_ASKED).passed is True
            per[k][1] += 1
        for k in v.hard_asked:
            per[k][0] += v.hard is not None and v.hard[k].passed is True
            per[k][1] += 1
    cs_pass = sum(per[k][0] for k in COMMONSENSE)
    hard_pass = sum(per[k][0] for k in HARD)
    hard_total = sum(len(v.hard_asked) for v in vs)
    return Rates(
        n=n,
        delivery=sum(v.delivered for v in vs) / n,
        commonsense_micro=cs_pass / (8 * n),
        commonsense_macro=sum(v.commonsense_pass for v in vs) / n,
        hard_micro=hard_pass / hard_total,
        hard_macro=sum(v.hard_pass for v in vs) / n,
        final=sum(v.final_pass for v in vs) / n,
        per_constraint={k: (p, t) for k, (p, t) in per.items()},
    )
