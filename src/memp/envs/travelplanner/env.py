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

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memp.envs.base import Env, int_option
from memp.envs.textgame import RegexSemantics
from memp.envs.travelplanner.database import (
    DB_FILES,
    ORIGIN_DB,
    ORIGIN_QUERIES,
    Database,
    _parse_literal,
    _present,
    _resolve_queries,
    before_paren,
    from_to,
    load_queries,
)
from memp.envs.travelplanner.evaluate import Evaluator, format_plan, parse_plan
from memp.errors import MissingData, check_choice

SPLITS = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
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

def _table(rows: list[dict[str, str]], columns: Iterable[str], max_rows: int) -> str:
    cols = list(columns)
    lines = [" | ".join(f"{c}: {r.get(c, '')}" for c in cols) for r in rows[:max_rows]]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more rows")
    return "\n".join(lines)




class TravelPlannerEnv(Env):
    """One split of TravelPlanner queries over the user's database.

    Options: ``db_dir`` (or ``$MEMP_TRAVELPLANNER_DB``), ``queries`` (or
    ``$MEMP_TRAVELPLANNER_QUERIES``), ``max_rows`` (rows shown per search, default 20),
    ``max_steps`` (truncate an episode after that many tool calls; default no limit,
    the agent's own step budget applies).
    """

    name = "travelplanner"
    family = "travel"
    semantics = SEMANTICS
    instructions = INSTRUCTIONS
    max_action_tokens = 768
    episode_unit = "queries"

    def __init__(
        self,
        split: str = "train",
        *,
        db_dir: str | Path | None = None,
        queries: str | Path | None = None,
        max_rows: int = 20,
        max_steps: int | None = None,
    ) -> None:
        self.split = SPLITS[check_choice("travelplanner split", split, SPLITS)]
        max_rows = int_option("max_rows", max_rows, minimum=1)
        if max_steps is not None:
            self.max_steps = int_option("max_steps", max_steps, minimum=1)
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
        self._won, self._score = False, 0.0
        self.last_evaluation: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.queries)

    def _reset(self, episode: int) -> str:
        self._q = self.queries[episode]
        self._task = str(self._q["query"])
        self._notebook, self._last_result = [], None
        self._won, self._score, self.last_evaluation = False, 0.0, None
        return self._task

    def _outcome(self) -> tuple[bool, float]:
        return self._won, self._score

    def _extra_info(self) -> dict[str, Any]:
        q = self._q or {}
        return {"level": q.get("level"), "days": q.get("days"), "evaluation": self.last_evaluation}

    # -- tools ----------------------------------------------------------------------
    def _step_after_end(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.last_evaluation is None:  # truncated, not submitted
            return super()._step_after_end(action)
        # after a submitted plan a step is answered, not refused: the agent reads why
        return "The plan was already submitted.", 0.0, True, False, self._info()

    def _step(self, action: str) -> tuple[str, float, bool, bool]:
        m = _CALL.match(action or "")
        if not m:
            return (
                "Invalid action: write one tool call such as FlightSearch[Ithaca, Charlotte, 2022-03-08].",
                0.0, False, False,
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
        return obs, 0.0, False, False

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


    def _submit(self, text: str) -> tuple[str, float, bool, bool]:
        assert self._q is not None
        try:
            plan = parse_plan(text)
        except (ValueError, SyntaxError):
            plan = []
        if not plan:
            return (
                "The plan could not be parsed: write one block per day starting with 'Day N:'.",
                0.0, False, False,
            )  # fmt: skip
        ev = self.evaluator.evaluate(self._q, plan)
        self.last_evaluation = ev
        checks = {**(ev["commonsense"] or {}), **(ev["hard"] or {})}
        failed = [f"{k}: {v[1]}" for k, v in checks.items() if v[0] is False]
        passed = sum(1 for v in checks.values() if v[0] is True)
        applicable = sum(1 for v in checks.values() if v[0] is not None)
        self._score = passed / applicable if applicable else 0.0
        self._won = bool(ev["final_pass"])
        obs = "Plan submitted. " + (
            "All constraints pass."
            if ev["final_pass"]
            else "Failed: " + "; ".join(failed or ["hard constraints not checked"])
        )
        return obs, float(self._won), True, False

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


    def _close(self) -> None:
        self._q = None
