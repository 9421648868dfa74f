"""The TravelPlanner database, read from the official formats.

The database directory has the layout of the official ``database`` folder. The flights
table is optional: without it, a query's flights come from its reference information
(:attr:`Query.flights <memp.envs.travelplanner.query.Query.flights>`). Helpers that read
the benchmark's text fields (``"Charlotte(North Carolina)"``, ``"Name, City"``, ``"from
A to B"``) live here too, as the evaluator and the environment both use them.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ORIGIN_DB = (
    "the TravelPlanner database (the `database` folder of the official release, "
    "https://github.com/OSU-NLP-Group/TravelPlanner, downloaded and unzipped)"
)
ORIGIN_QUERIES = (
    "the TravelPlanner queries (Hugging Face dataset `osunlp/TravelPlanner`, config "
    "train / validation / test, saved as .jsonl, .json or .csv)"
)
# the flights table is millions of rows and not always at hand: it is optional
OPTIONAL_DB_FILES = ("flights",)
DB_FILES = {
    "flights": "flights/clean_Flights_2022.csv",
    "accommodations": "accommodations/clean_accommodations_2022.csv",
    "restaurants": "restaurants/clean_restaurant_2022.csv",
    "attractions": "attractions/attractions.csv",
    "distance": "googleDistanceMatrix/distance.csv",
    "cities": "background/citySet_with_states.txt",
}


def _parse_literal(value: Any) -> Any:
    """Fields the official CSV stores as Python literals ("['2022-03-16']", "{'cuisine': None}")."""
    if isinstance(value, str) and value[:1] and value[:1] in "[{(":
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


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {k.strip(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(f)
        ]


def _by(rows: list[dict[str, str]], key: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        out.setdefault(r.get(key, ""), []).append(r)
    return out


# each table's name and city columns, as the official CSVs spell them
_COLUMNS = {"accommodations": ("NAME", "city"), "restaurants": ("Name", "City"),
            "attractions": ("Name", "City")}  # fmt: skip


@dataclass
class Database:
    flights: list[dict[str, str]]
    accommodations: list[dict[str, str]]
    restaurants: list[dict[str, str]]
    attractions: list[dict[str, str]]
    distances: dict[tuple[str, str], tuple[str, str]]
    city_state: dict[str, str]
    state_cities: dict[str, list[str]] = field(default_factory=dict)
    # rows by city, built once: every check looks places up by city
    _index: dict[str, dict[str, list[dict[str, str]]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for table, (_name, city) in _COLUMNS.items():
            self._index[table] = _by(getattr(self, table), city)

    def flights_numbered(self, number: str) -> list[dict[str, str]]:
        """The flights table's rows of one flight number (an empty table has none)."""
        if "flights" not in self._index:  # built on first use: the full table is large
            self._index["flights"] = _by(self.flights, "Flight Number")
        return self._index["flights"].get(number, [])

    def flights_on(self, origin: str, dest: str, date: str) -> list[dict[str, str]]:
        """The flights table's rows from ``origin`` to ``dest`` on ``date``."""
        if "routes" not in self._index:
            routes: dict[str, list[dict[str, str]]] = {}
            for r in self.flights:
                key = "|".join(
                    (
                        r.get("OriginCityName", ""),
                        r.get("DestCityName", ""),
                        r.get("FlightDate", ""),
                    )
                )
                routes.setdefault(key, []).append(r)
            self._index["routes"] = routes
        return self._index["routes"].get(f"{origin}|{dest}|{date}", [])

    @classmethod
    def load(cls, root: Path) -> Database:
        dist: dict[tuple[str, str], tuple[str, str]] = {}
        for r in _rows(root / DB_FILES["distance"]):
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
        flights = root / DB_FILES["flights"]
        return cls(
            flights=_rows(flights) if flights.is_file() else [],
            accommodations=_rows(root / DB_FILES["accommodations"]),
            restaurants=_rows(root / DB_FILES["restaurants"]),
            attractions=_rows(root / DB_FILES["attractions"]),
            distances=dist,
            city_state=city_state,
            state_cities=state_cities,
        )

    def in_city(self, table: str, city: str) -> list[dict[str, str]]:
        return self._index[table].get(city, [])

    def matches(self, table: str, name: str, city: str) -> list[dict[str, str]]:
        """Rows of ``city`` whose name contains ``name``: the benchmark's lookup (a name
        as written in a plan may be a shortened form of the table's)."""
        if not name:
            return []
        key = _COLUMNS[table][0]
        return [r for r in self.in_city(table, city) if name in r.get(key, "")]

    def find(self, table: str, name: str, city: str) -> dict[str, str] | None:
        hits = self.matches(table, name, city)
        return hits[0] if hits else None

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
