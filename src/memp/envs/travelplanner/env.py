"""TravelPlanner (Xie et al., 2024) as a tool environment, on user-supplied data.

The benchmark's database and queries are on no package index: point memp at them with
``db_dir=`` / ``queries=`` or the environment variables ``MEMP_TRAVELPLANNER_DB`` /
``MEMP_TRAVELPLANNER_QUERIES``. The database directory has the layout of the
official ``database`` folder; ``queries`` is a file (``.jsonl``, ``.json`` or ``.csv``
as exported from the Hugging Face dataset ``osunlp/TravelPlanner``) or a directory
holding ``<split>.jsonl|json|csv``.

Actions are the benchmark's tool calls (``FlightSearch[Ithaca, Charlotte,
2022-03-08]``, ``NotebookWrite[...]``, ...). ``Planner[<plan>]`` submits the final
plan, written in the official day-by-day text format (or as a JSON list of days); the
episode ends and the plan is checked against the benchmark's commonsense and hard
constraints. An episode is won when every applicable constraint passes (the
benchmark's "final pass").
"""

from __future__ import annotations

import ast
import csv
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memp.envs.textgame import RegexSemantics
from memp.errors import InvalidInput, MissingData, UnknownOption

SPLITS = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
}

ORIGIN_DB = (
    "the TravelPlanner database (the `database` folder of the official release, "
    "https://github.com/OSU-NLP-Group/TravelPlanner, downloaded and unzipped)"
)
ORIGIN_QUERIES = (
    "the TravelPlanner queries (Hugging Face dataset `osunlp/TravelPlanner`, config "
    "train / validation / test, saved as .jsonl, .json or .csv)"
)
DB_FILES = {
    "flights": "flights/clean_Flights_2022.csv",
    "accommodations": "accommodations/clean_accommodations_2022.csv",
    "restaurants": "restaurants/clean_restaurant_2022.csv",
    "attractions": "attractions/attractions.csv",
    "distance": "googleDistanceMatrix/distance.csv",
    "cities": "background/citySet_with_states.txt",
}

INSTRUCTIONS = """Collect information with the tools, write what you need into the Notebook, then submit a plan.
Tools (one call per action):
- FlightSearch[Departure City, Destination City, YYYY-MM-DD]
- DistanceMatrix[Origin, Destination, self-driving|taxi]
- AccommodationSearch[City]
- RestaurantSearch[City]
- AttractionSearch[City]
- CitySearch[State]
- NotebookWrite[Short Description] (stores the last search result)
- Planner[plan] submits the final plan: one block per day with the lines Day N:, Current City:,
  Transportation:, Breakfast:, Attraction:, Lunch:, Dinner:, Accommodation: ('-' when not needed;
  restaurants, attractions and accommodations written as "Name, City"; flights as
  "Flight Number: F123, from A to B, Departure Time: hh:mm, Arrival Time: hh:mm")."""

SEMANTICS = RegexSemantics(
    navigation=[],
    noop=[r"NotebookWrite\b", r"CitySearch\b"],
    failure=[
        "There is no",
        "no valid information",
        "Invalid",
        "Unknown tool",
        "could not be parsed",
    ],
    target=[
        r"^FlightSearch\[\s*[^,\]]+,\s*(?P<loc>[^,\]]+)",
        r"^DistanceMatrix\[\s*[^,\]]+,\s*(?P<loc>[^,\]]+)",
        r"^(?:AccommodationSearch|RestaurantSearch|AttractionSearch|CitySearch)\[\s*(?P<loc>[^\]]+)\]",
    ],
    seen=[r"^(?:Name|NAME|Flight Number): (?P<items>[^|\n]+)"],
)

_CALL = re.compile(r"^\s*(?P<tool>[A-Za-z]+)\s*\[(?P<arg>.*)\]\s*$", re.S)
PLAN_KEYS = (
    "current_city",
    "transportation",
    "breakfast",
    "attraction",
    "lunch",
    "dinner",
    "accommodation",
)


def _parse_literal(value: Any) -> Any:
    """Fields the official CSV stores as Python literals ("['2022-03-16']", "{'cuisine': None}")."""
    if isinstance(value, str) and value[:1] in "[{(":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return json.loads(value)
    return value


def _num(value: Any) -> float:
    try:
        return float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        return math.nan


def before_paren(text: str) -> str:
    """``"Charlotte(North Carolina)"`` -> ``"Charlotte"``."""
    return text.split("(", 1)[0].strip()


def name_city(entry: str) -> tuple[str, str]:
    """``"Cafe Maple Street, Charlotte"`` -> ``("Cafe Maple Street", "Charlotte")``."""
    if "," not in entry:
        return "-", "-"
    name, city = entry.rsplit(",", 1)
    return name.strip(), before_paren(city.strip().rstrip("."))


def from_to(text: str) -> tuple[str | None, str | None]:
    m = re.search(r"from\s+(.+?)\s+to\s+([^,]+?)(?=,|\s*$)", text)
    return (before_paren(m.group(1)), before_paren(m.group(2))) if m else (None, None)


def _present(value: Any) -> bool:
    return bool(value) and str(value).strip() not in {"-", ""}


# -- the database -------------------------------------------------------------------


@dataclass
class Database:
    flights: list[dict[str, str]]
    accommodations: list[dict[str, str]]
    restaurants: list[dict[str, str]]
    attractions: list[dict[str, str]]
    distances: dict[tuple[str, str], tuple[str, str]]
    city_state: dict[str, str]
    state_cities: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> Database:
        def rows(rel: str) -> list[dict[str, str]]:
            with open(root / rel, newline="", encoding="utf-8") as f:
                return [
                    {k.strip(): (v or "").strip() for k, v in r.items() if k}
                    for r in csv.DictReader(f)
                ]

        dist: dict[tuple[str, str], tuple[str, str]] = {}
        for r in rows(DB_FILES["distance"]):
            dist[(r.get("origin", ""), r.get("destination", ""))] = (
                r.get("duration", ""),
                r.get("distance", ""),
            )
        city_state: dict[str, str] = {}
        state_cities: dict[str, list[str]] = {}
        for line in (root / DB_FILES["cities"]).read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                city, state = (x.strip() for x in line.split("\t", 1))
                city_state[city] = state
                state_cities.setdefault(state, []).append(city)
        return cls(
            flights=rows(DB_FILES["flights"]),
            accommodations=rows(DB_FILES["accommodations"]),
            restaurants=rows(DB_FILES["restaurants"]),
            attractions=rows(DB_FILES["attractions"]),
            distances=dist,
            city_state=city_state,
            state_cities=state_cities,
        )

    # Lookups follow the benchmark: the name as a substring, the city exactly.
    def find(self, table: str, name: str, city: str) -> dict[str, str] | None:
        rows = getattr(self, table)
        name_key, city_key = ("NAME", "city") if table == "accommodations" else ("Name", "City")
        for r in rows:
            if name and name in r.get(name_key, "") and r.get(city_key, "") == city:
                return r
        return None

    def flight(
        self, number: str, origin: str | None = None, dest: str | None = None
    ) -> dict[str, str] | None:
        for r in self.flights:
            if r.get("Flight Number") == number and (
                origin is None
                or (r.get("OriginCityName") == origin and r.get("DestCityName") == dest)
            ):
                return r
        return None

    def drive(self, origin: str, dest: str, mode: str) -> dict[str, Any]:
        """Duration, distance and cost of driving; cost None when there is no route."""
        out: dict[str, Any] = {"duration": None, "distance": None, "cost": None}
        hit = self.distances.get((before_paren(origin), before_paren(dest)))
        if not hit or not hit[0] or not hit[1]:
            return out
        out["duration"], out["distance"] = hit
        if "day" in hit[0]:  # the benchmark treats multi-day drives as unavailable
            return out
        km = _num(hit[1].replace("km", ""))
        if math.isnan(km):
            return out
        out["cost"] = int(km * 0.05) if "driving" in mode else int(km) if mode == "taxi" else None
        return out


def _table(rows: list[dict[str, str]], columns: Iterable[str], max_rows: int) -> str:
    cols = list(columns)
    lines = [" | ".join(f"{c}: {r.get(c, '')}" for c in cols) for r in rows[:max_rows]]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more rows")
    return "\n".join(lines)


# -- plans and their evaluation -------------------------------------------------------------


def parse_plan(text: str) -> list[dict[str, Any]]:
    """The official day-by-day text format (or a JSON list of days) -> list of day dicts."""
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


Result = tuple[bool | None, str | None]


class Evaluator:
    """The benchmark's commonsense and hard constraints, on a :class:`Database`."""

    COMMONSENSE = (
        "is_reasonable_visiting_city", "is_valid_restaurants", "is_valid_attractions",
        "is_valid_accommodation", "is_valid_transportation", "is_valid_information_in_current_city",
        "is_valid_information_in_sandbox", "is_not_absent",
    )  # fmt: skip
    HARD = (
        "valid_cost",
        "valid_room_rule",
        "valid_cuisine",
        "valid_room_type",
        "valid_transportation",
    )

    def __init__(self, db: Database) -> None:
        self.db = db

    # commonsense -----------------------------------------------------------------
    def _days(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return plan[: int(q["days"])]

    def _cities_of(self, day: dict[str, Any]) -> list[str]:
        cur = str(day.get("current_city", ""))
        if "from " in cur:
            a, b = from_to(cur)
            return [c for c in (a, b) if c]
        return [before_paren(cur)]

    def reasonable_city(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        route: list[str] = []
        for i, day in enumerate(self._days(q, plan)):
            cities = self._cities_of(day)
            if i == 0 and "from " in str(day.get("current_city", "")) and cities[0] != q["org"]:
                return False, f"The first day's city should be {q['org']}."
            route += cities
        if not route or route[0] != route[-1]:
            return False, "The trip should be a closed circle."
        # Each city in the middle of the route is visited in one consecutive stretch.
        if len(route) < 3:
            return False, "The city sequence is invalid."
        seen: set[str] = set()
        i = 0
        while i < len(route):
            city, count = route[i], 0
            if city in seen and 0 < i < len(route) - 1:
                return False, "The city sequence is invalid."
            while i < len(route) and route[i] == city:
                count, i = count + 1, i + 1
            if count == 1 and 0 < i - 1 < len(route) - 1:
                return False, "The city sequence is invalid."
            seen.add(city)
        for idx, city in enumerate(route):
            if city not in self.db.city_state:
                return False, f"{city} is not a valid city."
            if (
                idx not in (0, len(route) - 1)
                and int(q["days"]) > 3
                and self.db.city_state[city] != q["dest"]
            ):
                return False, f"{city} is not in {q['dest']}."
        return True, None

    def diverse(
        self, q: dict[str, Any], plan: list[dict[str, Any]], keys: tuple[str, ...], what: str
    ) -> Result:
        used: set[str] = set()
        for i, day in enumerate(self._days(q, plan), 1):
            for key in keys:
                if not _present(day.get(key)):
                    continue
                items = (
                    [x.strip() for x in str(day[key]).split(";")]
                    if key == "attraction"
                    else [str(day[key]).strip()]
                )
                for item in filter(None, (x.rstrip(".") for x in items)):
                    if item in used:
                        return False, f"The {what} {item!r} in day {i} is repeated."
                    used.add(item)
        return True, None

    def minimum_nights(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        stays: list[list[Any]] = []
        for day in self._days(q, plan):
            acc = day.get("accommodation", "-")
            if stays and stays[-1][0] == acc:
                stays[-1][1] += 1
            else:
                stays.append([acc, 1])
        for acc, nights in stays:
            if not _present(acc):
                continue
            name, city = name_city(str(acc))
            row = self.db.find("accommodations", name, city)
            if row is not None and nights < _num(row.get("minimum nights", 0)):
                return False, f"The accommodation {acc} does not obey the minimum nights rule."
        return True, None

    def _mode(self, text: str) -> str | None:
        low = text.lower()
        return (
            "Taxi"
            if "taxi" in low
            else "Self-driving"
            if "self-driving" in low
            else "Flight"
            if "flight" in low
            else None
        )

    def non_conflicting_transport(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        days = self._days(q, plan)
        if not days or not _present(days[0].get("transportation")):
            return False, "The transportation in day 1 should not be empty."
        modes = {
            self._mode(str(d["transportation"])) for d in days if _present(d.get("transportation"))
        }
        if "Self-driving" in modes and ("Flight" in modes or "Taxi" in modes):
            return False, "The transportation is conflicting."
        return True, None

    def within_current_city(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        for i, day in enumerate(self._days(q, plan), 1):
            cities = self._cities_of(day)
            if _present(day.get("transportation")) and any(
                c not in day["transportation"] for c in cities
            ):
                return False, f"The transportation in day {i} is invalid city choice."
            for key in ("breakfast", "lunch", "dinner"):
                if _present(day.get(key)) and not any(c in day[key] for c in cities):
                    return False, f"The {key} in day {i} is invalid city choice."
            if _present(day.get("attraction")):
                for a in filter(None, (x.strip() for x in str(day["attraction"]).split(";"))):
                    if not any(c in a for c in cities):
                        return False, f"The attraction in day {i} is invalid city choice."
            if (
                _present(day.get("accommodation"))
                and cities
                and cities[-1] not in day["accommodation"]
            ):
                return False, f"The accommodation in day {i} is invalid city choice."
        return True, None

    def within_sandbox(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        for i, day in enumerate(self._days(q, plan), 1):
            if _present(day.get("transportation")):
                value = str(day["transportation"])
                org, dest = from_to(value)
                if org is None:
                    org, dest = from_to(str(day.get("current_city", "")))
                if "flight number" in value.lower():
                    number = value.split("Flight Number:")[1].split(",")[0].strip()
                    if self.db.flight(number, org, dest) is None:
                        return False, f"The flight number in day {i} is invalid in the sandbox."
                elif self._mode(value) in ("Self-driving", "Taxi"):
                    mode = "self-driving" if self._mode(value) == "Self-driving" else "taxi"
                    if org is None or self.db.drive(org, dest or "", mode)["cost"] is None:
                        return False, f"The {mode} in day {i} is invalid in the sandbox."
            for key in ("breakfast", "lunch", "dinner"):
                if (
                    _present(day.get(key))
                    and self.db.find("restaurants", *name_city(str(day[key]))) is None
                ):
                    return False, f"The {key} in day {i} is invalid in the sandbox."
            if _present(day.get("attraction")):
                for a in filter(
                    None, (x.strip().rstrip(".") for x in str(day["attraction"]).split(";"))
                ):
                    if self.db.find("attractions", *name_city(a)) is None:
                        return False, f"The attraction {a} in day {i} is invalid in the sandbox."
            if (
                _present(day.get("accommodation"))
                and self.db.find("accommodations", *name_city(str(day["accommodation"]))) is None
            ):
                return False, f"The accommodation in day {i} is invalid in the sandbox."
        return True, None

    def not_absent(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        days = self._days(q, plan)
        if len([d for d in days if d]) != int(q["days"]):
            return False, f"The number of days should be {q['days']}."
        visited = {c for d in days for c in self._cities_of(d)} - {q["org"]}
        if len(visited) != int(q["visiting_city_number"]):
            return False, f"The number of visiting cities should be {q['visiting_city_number']}."
        filled = 0
        for i, d in enumerate(days, 1):
            cur = str(d.get("current_city", ""))
            travelling = "from " in cur
            if travelling and not _present(d.get("transportation")):
                return False, f"No transportation in day {i} is not allowed."
            if not travelling and not _present(d.get("attraction")):
                return False, f"No attraction in day {i} is not allowed."
            if i != int(q["days"]) and not _present(d.get("accommodation")):
                return False, f"No accommodation in day {i} is not allowed."
            if not travelling and not all(
                _present(d.get(k)) for k in ("breakfast", "lunch", "dinner")
            ):
                return False, f"No meal in day {i} is not allowed."
            filled += sum(1 for k in PLAN_KEYS if _present(d.get(k)))
        if filled / (6 * int(q["days"])) < 0.5:
            return False, "The absent information is more than 50%."
        return True, None

    def commonsense(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> dict[str, Result]:
        return {
            "is_reasonable_visiting_city": self.reasonable_city(q, plan),
            "is_valid_restaurants": self.diverse(
                q, plan, ("breakfast", "lunch", "dinner"), "restaurant"
            ),
            "is_valid_attractions": self.diverse(q, plan, ("attraction",), "attraction"),
            "is_valid_accommodation": self.minimum_nights(q, plan),
            "is_valid_transportation": self.non_conflicting_transport(q, plan),
            "is_valid_information_in_current_city": self.within_current_city(q, plan),
            "is_valid_information_in_sandbox": self.within_sandbox(q, plan),
            "is_not_absent": self.not_absent(q, plan),
        }

    # hard ------------------------------------------------------------------------
    def total_cost(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> float:
        people = int(q["people_number"])
        total = 0.0
        for day in self._days(q, plan):
            value = str(day.get("transportation", "-"))
            if _present(value):
                org, dest = from_to(value)
                if org is None:
                    org, dest = from_to(str(day.get("current_city", "")))
                if org is not None and "flight number" in value.lower():
                    row = self.db.flight(value.split("Flight Number:")[1].split(",")[0].strip())
                    if row is not None:
                        total += _num(row["Price"]) * people
                elif org is not None and self._mode(value) == "Self-driving":
                    total += (
                        self.db.drive(org, dest or "", "self-driving")["cost"] or 0
                    ) * math.ceil(people / 5)
                elif org is not None and self._mode(value) == "Taxi":
                    total += (self.db.drive(org, dest or "", "taxi")["cost"] or 0) * math.ceil(
                        people / 4
                    )
            for key in ("breakfast", "lunch", "dinner"):
                if _present(day.get(key)):
                    row = self.db.find("restaurants", *name_city(str(day[key])))
                    if row is not None:
                        total += _num(row["Average Cost"]) * people
            if _present(day.get("accommodation")):
                row = self.db.find("accommodations", *name_city(str(day["accommodation"])))
                if row is not None:
                    total += _num(row["price"]) * math.ceil(
                        people / max(1.0, _num(row["maximum occupancy"]))
                    )
        return total

    def _accommodations(
        self, q: dict[str, Any], plan: list[dict[str, Any]]
    ) -> list[dict[str, str]]:
        rows = []
        for day in self._days(q, plan):
            if _present(day.get("accommodation")):
                row = self.db.find("accommodations", *name_city(str(day["accommodation"])))
                if row is not None:
                    rows.append(row)
        return rows

    def room_rule(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        rule = q["local_constraint"].get("house rule")
        if rule is None:
            return None, None
        # "parities" is how the benchmark's queries spell parties.
        banned = {"smoking": "No smoking", "parties": "No parties", "parities": "No parties",
                  "children under 10": "No children under 10", "visitors": "No visitors", "pets": "No pets"}.get(rule)  # fmt: skip
        for row in self._accommodations(q, plan):
            if banned and banned in row.get("house_rules", ""):
                return False, f"The house rule should be {rule}."
        return True, None

    def room_type(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        want = q["local_constraint"].get("room type")
        if want is None:
            return None, None
        for row in self._accommodations(q, plan):
            got = row.get("room type", "")
            ok = {
                "not shared room": got != "Shared room",
                "shared room": got == "Shared room",
                "private room": got == "Private room",
                "entire room": got == "Entire home/apt",
            }.get(want, True)
            if not ok:
                return False, f"The room type should be {want}."
        return True, None

    def cuisine(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        wanted = q["local_constraint"].get("cuisine")
        if not wanted:
            return None, None
        found: set[str] = set()
        for day in self._days(q, plan):
            for key in ("breakfast", "lunch", "dinner"):
                if not _present(day.get(key)):
                    continue
                name, city = name_city(str(day[key]))
                if city == q["org"]:
                    continue
                row = self.db.find("restaurants", name, city)
                if row is not None:
                    found |= {c for c in wanted if c in row.get("Cuisines", "")}
        missing = [c for c in wanted if c not in found]
        return (
            (True, None) if not missing else (False, f"The cuisine {missing[0]} is not satisfied.")
        )

    def transportation(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> Result:
        rule = q["local_constraint"].get("transportation")
        if rule is None:
            return None, None
        for day in self._days(q, plan):
            value = str(day.get("transportation", "-"))
            if rule == "no flight" and "Flight" in value:
                return False, f"The query asks for {rule}."
            if rule == "no self-driving" and "Self-driving" in value:
                return False, f"The query asks for {rule}."
        return True, None

    def hard(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> dict[str, Result]:
        return {
            "valid_cost": (bool(self.total_cost(q, plan) <= _num(q["budget"])), None),
            "valid_room_rule": self.room_rule(q, plan),
            "valid_cuisine": self.cuisine(q, plan),
            "valid_room_type": self.room_type(q, plan),
            "valid_transportation": self.transportation(q, plan),
        }

    def evaluate(self, q: dict[str, Any], plan: list[dict[str, Any]]) -> dict[str, Any]:
        """Commonsense and hard results plus the pass flags, as the benchmark computes them.

        Hard constraints are only checked when the plan is complete and grounded in the
        database (the benchmark skips them otherwise and counts them as failed).
        """
        if not plan:
            return {
                "commonsense": None,
                "hard": None,
                "commonsense_pass": False,
                "hard_pass": False,
                "final_pass": False,
            }
        cs = self.commonsense(q, plan)
        hard = None
        if cs["is_not_absent"][0] and cs["is_valid_information_in_sandbox"][0]:
            hard = self.hard(q, plan)
        cs_pass = all(v[0] is not False for v in cs.values())
        hard_pass = hard is not None and all(v[0] is not False for v in hard.values())
        return {
            "commonsense": cs,
            "hard": hard,
            "commonsense_pass": cs_pass,
            "hard_pass": hard_pass,
            "final_pass": cs_pass and hard_pass,
            "cost": self.total_cost(q, plan),
        }


# -- queries ------------------------------------------------------------------------


def load_queries(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        raw = [
            json.loads(line)
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    elif path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = data if isinstance(data, list) else data.get("data", [data])
    elif path.suffix == ".csv":
        csv.field_size_limit(1 << 30)
        with open(path, newline="", encoding="utf-8") as f:
            raw = list(csv.DictReader(f))
    else:
        raise InvalidInput(f"unsupported query file {path}: use .jsonl, .json or .csv")
    out = []
    for i, r in enumerate(raw):
        try:
            q = {k: _parse_literal(v) for k, v in r.items() if k}
            for k in ("days", "visiting_city_number", "people_number"):
                q[k] = int(_num(q[k]))
            q["budget"] = _num(q["budget"])
            q["local_constraint"] = dict(q.get("local_constraint") or {})
            if isinstance(q.get("date"), str):
                q["date"] = [q["date"]]
        except (KeyError, ValueError, SyntaxError) as e:
            raise InvalidInput(
                f"query {i} of {path} is not in the TravelPlanner format: {e}"
            ) from e
        out.append(q)
    return out


def _resolve_queries(queries: Path, split: str) -> Path | None:
    if queries.is_file():
        return queries
    for ext in (".jsonl", ".json", ".csv"):
        cand = queries / f"{split}{ext}"
        if cand.exists():
            return cand
    return None


# -- the environment ------------------------------------------------------------------


class TravelPlannerEnv:
    """One split of TravelPlanner queries over the user's database.

    Options: ``db_dir`` (or ``$MEMP_TRAVELPLANNER_DB``), ``queries`` (or
    ``$MEMP_TRAVELPLANNER_QUERIES``), ``max_rows`` (rows shown per search, default 20).
    """

    name = "travelplanner"
    family = "travel"
    semantics = SEMANTICS
    instructions = INSTRUCTIONS
    max_action_tokens = 768

    def __init__(
        self,
        split: str = "train",
        *,
        db_dir: str | Path | None = None,
        queries: str | Path | None = None,
        max_rows: int = 20,
    ) -> None:
        if split not in SPLITS:
            raise UnknownOption("travelplanner split", split, SPLITS)
        self.split = SPLITS[split]
        db_dir = db_dir or os.environ.get("MEMP_TRAVELPLANNER_DB")
        queries = queries or os.environ.get("MEMP_TRAVELPLANNER_QUERIES")
        missing: list[str] = []
        if not db_dir:
            missing.append(
                f"database directory: not given (pass db_dir= / --db-dir or set MEMP_TRAVELPLANNER_DB); it is {ORIGIN_DB}"
            )
        else:
            for rel in DB_FILES.values():
                if not (Path(db_dir) / rel).is_file():
                    missing.append(f"{Path(db_dir) / rel} (from {ORIGIN_DB})")
        qfile = None
        if not queries:
            missing.append(
                f"query file: not given (pass queries= / --queries or set MEMP_TRAVELPLANNER_QUERIES); it is {ORIGIN_QUERIES}"
            )
        else:
            qfile = _resolve_queries(Path(queries), self.split)
            if qfile is None:
                missing.append(
                    f"{Path(queries) / (self.split + '.jsonl|.json|.csv')}: {ORIGIN_QUERIES}"
                )
        if missing:
            raise MissingData("TravelPlanner data is missing:\n  - " + "\n  - ".join(missing))
        assert qfile is not None and db_dir
        self.db = Database.load(Path(db_dir))
        self.evaluator = Evaluator(self.db)
        self.queries = load_queries(qfile)
        self.max_rows = max_rows
        self._q: dict[str, Any] | None = None
        self._notebook: list[dict[str, str]] = []
        self._last_result: str | None = None
        self._done = False
        self.last_evaluation: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.queries)

    def reset(
        self, *, episode: int | None = None, seed: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        if episode is None:
            episode = 0 if seed is None else seed % len(self.queries)
        if not 0 <= episode < len(self.queries):
            raise InvalidInput(
                f"episode {episode} is out of range: this split has {len(self.queries)} queries"
            )
        self._q = self.queries[episode]
        self._notebook, self._last_result, self._done = [], None, False
        self.last_evaluation = None
        return str(self._q["query"]), self._info(won=False)

    def _info(self, *, won: bool, score: float = 0.0) -> dict[str, Any]:
        q = self._q or {}
        return {
            "task": str(q.get("query", "")),
            "admissible": None,
            "won": won,
            "score": score,
            "level": q.get("level"),
            "days": q.get("days"),
            "evaluation": self.last_evaluation,
        }

    @property
    def task(self) -> str:
        return "" if self._q is None else str(self._q["query"])

    def admissible_actions(self) -> list[str] | None:
        return None

    # -- tools ----------------------------------------------------------------------
    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._q is None:
            raise InvalidInput("call reset(episode=...) before step()")
        if self._done:
            return (
                "The plan was already submitted.",
                0.0,
                True,
                False,
                self._info(won=bool(self.last_evaluation and self.last_evaluation["final_pass"])),
            )
        m = _CALL.match(action or "")
        if not m:
            return (
                "Invalid action: write one tool call such as FlightSearch[Ithaca, Charlotte, 2022-03-08].",
                0.0, False, False, self._info(won=False),
            )  # fmt: skip
        tool, arg = m.group("tool"), m.group("arg").strip()
        if tool == "Planner":
            return self._submit(arg)
        handler = {
            "FlightSearch": self._flights,
            "DistanceMatrix": self._distance,
            "AccommodationSearch": self._accommodations,
            "RestaurantSearch": self._restaurants,
            "AttractionSearch": self._attractions,
            "CitySearch": self._cities,
            "NotebookWrite": self._notebook_write,
        }.get(tool)
        if handler is None:
            obs = f"Unknown tool {tool!r}. Tools: FlightSearch, DistanceMatrix, AccommodationSearch, RestaurantSearch, AttractionSearch, CitySearch, NotebookWrite, Planner."
        else:
            args = [a.strip() for a in arg.split(",")] if tool not in ("NotebookWrite",) else [arg]
            try:
                obs = handler(*args)
            except TypeError:
                obs = f"Invalid arguments for {tool}: {arg!r}."
        return obs, 0.0, False, False, self._info(won=False)

    def _remember(self, text: str) -> str:
        self._last_result = text
        return text

    def _flights(self, origin: str, dest: str, date: str) -> str:
        rows = [
            r
            for r in self.db.flights
            if r.get("OriginCityName") == origin
            and r.get("DestCityName") == dest
            and r.get("FlightDate") == date
        ]
        if not rows:
            return self._remember(f"There is no flight from {origin} to {dest} on {date}.")
        cols = (
            "Flight Number",
            "Price",
            "DepTime",
            "ArrTime",
            "ActualElapsedTime",
            "FlightDate",
            "OriginCityName",
            "DestCityName",
            "Distance",
        )
        return self._remember(_table(rows, cols, self.max_rows))

    def _distance(self, origin: str, dest: str, mode: str = "driving") -> str:
        info = self.db.drive(origin, dest, mode)
        if info["cost"] is None:
            return self._remember(f"{mode}, from {origin} to {dest}, no valid information.")
        return self._remember(
            f"{mode}, from {before_paren(origin)} to {before_paren(dest)}, duration: {info['duration']}, "
            f"distance: {info['distance']}, cost: {info['cost']}"
        )

    def _accommodations(self, city: str) -> str:
        rows = [r for r in self.db.accommodations if r.get("city") == city]
        if not rows:
            return self._remember("There is no accommodation in this city.")
        cols = (
            "NAME",
            "price",
            "room type",
            "house_rules",
            "minimum nights",
            "maximum occupancy",
            "review rate number",
            "city",
        )
        return self._remember(_table(rows, cols, self.max_rows))

    def _restaurants(self, city: str) -> str:
        rows = [r for r in self.db.restaurants if r.get("City") == city]
        if not rows:
            return self._remember("There is no restaurant in this city.")
        return self._remember(
            _table(
                rows,
                ("Name", "Average Cost", "Cuisines", "Aggregate Rating", "City"),
                self.max_rows,
            )
        )

    def _attractions(self, city: str) -> str:
        rows = [r for r in self.db.attractions if r.get("City") == city]
        if not rows:
            return self._remember("There is no attraction in this city.")
        return self._remember(_table(rows, ("Name", "Address", "City"), self.max_rows))

    def _cities(self, state: str) -> str:
        cities = self.db.state_cities.get(state)
        if not cities:
            return self._remember(f"Invalid state {state!r}.")
        return self._remember(", ".join(cities))

    def _notebook_write(self, description: str) -> str:
        if self._last_result is None:
            return "There is no search result to record yet; search first."
        self._notebook.append({"Short Description": description, "Content": self._last_result})
        return f"The information has been recorded in Notebook, and its index is {len(self._notebook) - 1}."

    @property
    def notebook(self) -> list[dict[str, str]]:
        return list(self._notebook)

    def _submit(self, text: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        assert self._q is not None
        try:
            plan = parse_plan(text)
        except (ValueError, SyntaxError):
            plan = []
        if not plan:
            return (
                "The plan could not be parsed: write one block per day starting with 'Day N:'.",
                0.0, False, False, self._info(won=False),
            )  # fmt: skip
        ev = self.evaluator.evaluate(self._q, plan)
        self.last_evaluation = ev
        self._done = True
        checks = {**(ev["commonsense"] or {}), **(ev["hard"] or {})}
        failed = [f"{k}: {v[1]}" for k, v in checks.items() if v[0] is False]
        passed = sum(1 for v in checks.values() if v[0] is True)
        applicable = sum(1 for v in checks.values() if v[0] is not None)
        score = passed / applicable if applicable else 0.0
        obs = "Plan submitted. " + (
            "All constraints pass."
            if ev["final_pass"]
            else "Failed: " + "; ".join(failed or ["hard constraints not checked"])
        )
        won = bool(ev["final_pass"])
        return obs, float(won), True, False, self._info(won=won, score=score)

    # -- expert ---------------------------------------------------------------------
    def annotated_plan(self) -> list[dict[str, Any]] | None:
        if self._q is None:
            return None
        ann = self._q.get("annotated_plan")
        if not ann:
            return None
        days = ann if isinstance(ann, list) else _parse_literal(ann)
        return [d for d in days if isinstance(d, dict) and "current_city" in d] or None

    def expert_actions(self) -> list[str] | None:
        """Tool calls that gather what the annotated plan uses, then the plan itself.

        Only queries with an annotated plan (the train split) have an expert.
        """
        plan = self.annotated_plan()
        if not plan or self._q is None:
            return None
        dates = list(self._q.get("date") or [])
        actions: list[str] = []
        searched: set[str] = set()
        for i, day in enumerate(plan):
            value = str(day.get("transportation", "-"))
            if _present(value):
                org, dest = from_to(value)
                if org is None:
                    org, dest = from_to(str(day.get("current_city", "")))
                if org and dest:
                    if "flight number" in value.lower():
                        date = dates[i] if i < len(dates) else dates[-1] if dates else ""
                        actions += [
                            f"FlightSearch[{org}, {dest}, {date}]",
                            f"NotebookWrite[Flights from {org} to {dest} on {date}]",
                        ]
                    elif "taxi" in value.lower() or "self-driving" in value.lower():
                        mode = "taxi" if "taxi" in value.lower() else "self-driving"
                        actions += [
                            f"DistanceMatrix[{org}, {dest}, {mode}]",
                            f"NotebookWrite[{mode} from {org} to {dest}]",
                        ]
            for city in self.evaluator._cities_of(day):
                if city == self._q["org"] or city in searched:
                    continue
                searched.add(city)
                for tool, label in (
                    ("AccommodationSearch", "Accommodations"),
                    ("RestaurantSearch", "Restaurants"),
                    ("AttractionSearch", "Attractions"),
                ):
                    actions += [f"{tool}[{city}]", f"NotebookWrite[{label} in {city}]"]
        actions.append(f"Planner[{format_plan(plan)}]")
        return actions

    def close(self) -> None:
        self._q = None
