"""The TravelPlanner database and query files, read from the official formats.

The database directory has the layout of the official ``database`` folder; queries
are ``.jsonl`` / ``.json`` / ``.csv`` files as exported from the Hugging Face dataset
``osunlp/TravelPlanner``. Helpers that read the benchmark's text fields
(``"Charlotte(North Carolina)"``, ``"Name, City"``, ``"from A to B"``) live here too,
as the evaluator and the environment both use them.
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

from memp.errors import InvalidInput

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

