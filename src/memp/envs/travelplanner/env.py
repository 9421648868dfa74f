"""TravelPlanner (Xie et al., 2024) as a tool environment.

The benchmark's data is on no package index. memp reads it from ``db_dir=`` /
``queries=`` or the environment variables ``MEMP_TRAVELPLANNER_DB`` /
``MEMP_TRAVELPLANNER_QUERIES``, and otherwise from ``../shared/travelplanner`` (beside
the working directory or the source checkout) when it is there. The database directory
has the layout of the official ``database`` folder (the flights table may be absent:
each query's flights then come from its reference information); ``queries`` is a file
(benchmark records as ``.jsonl`` / ``.json`` / ``.csv``, or the chat-format
``train_gold_plans.jsonl``) or a directory holding ``<split>.jsonl|json|csv``.

Two modes, as in the benchmark:

- ``two-stage`` (default): the agent gathers information with the tools
  (``FlightSearch[Ithaca, Charlotte, 2022-03-08]``, ``NotebookWrite[...]``, ...), then
  submits ``Planner[<plan>]``;
- ``sole-planning``: the query's reference information is given with the task and
  only ``Planner[<plan>]`` is asked for.

The plan is written in the official day-by-day text format (or as a JSON list of
days); the episode ends and the plan is checked against the benchmark's commonsense
and hard constraints. The reward is 1 when every applicable constraint passes (the
benchmark's "final pass"), else 0; the score is the share of applicable constraints
that pass.
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
    OPTIONAL_DB_FILES,
    ORIGIN_DB,
    ORIGIN_QUERIES,
    Database,
    _present,
    before_paren,
    from_to,
)
from memp.envs.travelplanner.evaluate import Evaluator, Verdict, _cities, format_plan, parse_plan
from memp.envs.travelplanner.query import Query, load_queries, resolve_queries
from memp.errors import MissingData, check_choice

SPLITS = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
}
MODES = ("two-stage", "sole-planning")
REFERENCE_FILE = "train_ref_info.jsonl"
GOLD_FILE = "train_gold_plans.jsonl"

_PLAN_FORMAT = """Planner[plan] submits the final plan: one block per day with the lines Day N:, Current City:,
  Transportation:, Breakfast:, Attraction:, Lunch:, Dinner:, Accommodation: ('-' when not needed;
  restaurants, attractions and accommodations written as "Name, City", attractions separated by ';';
  flights as "Flight Number: F123, from A to B, Departure Time: hh:mm, Arrival Time: hh:mm")."""

INSTRUCTIONS = f"""Collect information with the tools, write what you need into the Notebook, then submit a plan.
Tools (one call per action):
- FlightSearch[Departure City, Destination City, YYYY-MM-DD]
- GoogleDistanceMatrix[Origin, Destination, self-driving|taxi]
- AccommodationSearch[City]
- RestaurantSearch[City]
- AttractionSearch[City]
- CitySearch[State]
- NotebookWrite[Short Description] (stores the last search result)
- {_PLAN_FORMAT}"""

SOLE_PLANNING_INSTRUCTIONS = f"""The reference information for the query is given with the task: plan from it alone.
- {_PLAN_FORMAT}"""

TOOLS = ("FlightSearch", "GoogleDistanceMatrix", "AccommodationSearch", "RestaurantSearch",
         "AttractionSearch", "CitySearch", "NotebookWrite", "Planner")  # fmt: skip

SEMANTICS = RegexSemantics(
    navigation=[],
    noop=[r"NotebookWrite\b", r"CitySearch\b"],
    failure=[
        "There is no",
        "no valid information",
        "Invalid",
        "Unknown tool",
        "could not be parsed",
        "sole-planning",
    ],
    target=[
        r"^FlightSearch\[\s*[^,\]]+,\s*(?P<loc>[^,\]]+)",
        r"^(?:Google)?DistanceMatrix\[\s*[^,\]]+,\s*(?P<loc>[^,\]]+)",
        r"^(?:AccommodationSearch|RestaurantSearch|AttractionSearch|CitySearch)\[\s*(?P<loc>[^\]]+)\]",
    ],
    seen=[r"^(?:Name|NAME|Flight Number): (?P<items>[^|\n]+)"],
)

_CALL = re.compile(r"^\s*(?P<tool>[A-Za-z]+)\s*\[(?P<arg>.*)\]\s*$", re.S)
_FLIGHT_COLUMNS = ("Flight Number", "Price", "DepTime", "ArrTime", "ActualElapsedTime",
                   "FlightDate", "OriginCityName", "DestCityName", "Distance")  # fmt: skip
_ACCOMMODATION_COLUMNS = ("NAME", "price", "room type", "house_rules", "minimum nights",
                          "maximum occupancy", "review rate number", "city")  # fmt: skip


def _table(rows: list[dict[str, Any]], columns: Iterable[str] | None, max_rows: int | None) -> str:
    cols = list(columns) if columns is not None else list(rows[0]) if rows else []
    shown = rows if max_rows is None else rows[:max_rows]
    lines = [" | ".join(f"{c}: {r.get(c, '')}" for c in cols) for r in shown]
    if len(rows) > len(shown):
        lines.append(f"... {len(rows) - len(shown)} more rows")
    return "\n".join(lines)


# -- where the data is ----------------------------------------------------------------


def default_data() -> Path | None:
    """``../shared/travelplanner`` beside the working directory or the source checkout."""
    here = Path(__file__).resolve()
    for base in (Path.cwd().parent, here.parents[5] if len(here.parents) > 5 else None):
        if base is None:
            continue
        root = base / "shared" / "travelplanner"
        if (root / "database" / DB_FILES["restaurants"]).is_file():
            return root
    return None


def _database_dir(path: Path) -> Path:
    # the shared folder's root holds the database in `database/`: accept either
    return (
        path / "database"
        if (path / "database").is_dir() and not (path / DB_FILES["cities"]).exists()
        else path
    )


_DATABASES: dict[Path, Database] = {}


def load_database(db_dir: Path) -> Database:
    """The database of ``db_dir``, read once per process (it is read-only)."""
    key = db_dir.resolve()
    if key not in _DATABASES:
        _DATABASES[key] = Database.load(key)
    return _DATABASES[key]


def default_database() -> Database:
    """The database of ``$MEMP_TRAVELPLANNER_DB``, else of :func:`default_data`."""
    given = os.environ.get("MEMP_TRAVELPLANNER_DB")
    root = Path(given) if given else default_data()
    if root is None:
        raise MissingData(
            f"no TravelPlanner database: pass db= or set MEMP_TRAVELPLANNER_DB; it is {ORIGIN_DB}"
        )
    return load_database(_database_dir(root))


class TravelPlannerEnv(Env):
    """One split of TravelPlanner queries over the benchmark's database.

    Options: ``db_dir`` (or ``$MEMP_TRAVELPLANNER_DB``), ``queries`` (or
    ``$MEMP_TRAVELPLANNER_QUERIES``), ``reference`` (reference information for
    chat-format queries; default ``train_ref_info.jsonl`` in the database directory),
    ``mode`` (``two-stage`` or ``sole-planning``), ``max_rows`` (rows shown per search,
    default 20), ``max_steps`` (truncate an episode after that many tool calls; default
    no limit, the agent's own step budget applies).
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
        reference: str | Path | None = None,
        mode: str = "two-stage",
        max_rows: int = 20,
        max_steps: int | None = None,
    ) -> None:
        self.split = SPLITS[check_choice("travelplanner split", split, SPLITS)]
        self.mode = check_choice("travelplanner mode", mode, MODES)
        max_rows = int_option("max_rows", max_rows, minimum=1)
        if max_steps is not None:
            self.max_steps = int_option("max_steps", max_steps, minimum=1)
        shared = default_data()
        db_dir = db_dir or os.environ.get("MEMP_TRAVELPLANNER_DB") or shared
        queries = queries or os.environ.get("MEMP_TRAVELPLANNER_QUERIES")
        if not queries and shared is not None and self.split == "train":
            queries = shared / GOLD_FILE
        missing: list[str] = []
        db_path = _database_dir(Path(db_dir)) if db_dir else None
        if db_path is None:
            missing.append(
                f"database directory: not given (pass db_dir= / --db-dir or set MEMP_TRAVELPLANNER_DB); it is {ORIGIN_DB}"
            )
        else:
            for key, rel in DB_FILES.items():
                if key not in OPTIONAL_DB_FILES and not (db_path / rel).is_file():
                    missing.append(f"{db_path / rel} (from {ORIGIN_DB})")
        qfile = None
        if not queries:
            missing.append(
                f"query file: not given (pass queries= / --queries or set MEMP_TRAVELPLANNER_QUERIES); it is {ORIGIN_QUERIES}"
            )
        else:
            qfile = resolve_queries(Path(queries), self.split)
            if qfile is None:
                missing.append(
                    f"{Path(queries) / (self.split + '.jsonl|.json|.csv')}: {ORIGIN_QUERIES}"
                )
        if missing:
            raise MissingData("TravelPlanner data is missing:\n  - " + "\n  - ".join(missing))
        assert qfile is not None and db_path is not None
        self.db = load_database(db_path)
        self.evaluator = Evaluator(self.db)
        ref = Path(reference) if reference else db_path / REFERENCE_FILE
        self.queries: list[Query] = load_queries(qfile, self.db.city_state, ref)
        if self.mode == "sole-planning":
            self.instructions = SOLE_PLANNING_INSTRUCTIONS
            bare = [i for i, q in enumerate(self.queries) if not q.reference]
            if bare:
                raise MissingData(
                    f"sole-planning needs each query's reference information; queries {bare[:5]} of "
                    f"{qfile} have none (give reference= a train_ref_info.jsonl-style file)"
                )
        self.max_rows = max_rows
        self._q: Query | None = None
        self._notebook: list[dict[str, str]] = []
        self._last_result: str | None = None
        self.last_evaluation: Verdict | None = None

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def query(self) -> Query | None:
        """The current episode's query."""
        return self._q

    def _reset(self, episode: int) -> str:
        self._q = self.queries[episode]
        self._task = self._q.text
        self._notebook, self._last_result = [], None
        self.last_evaluation = None
        if self.mode == "sole-planning":
            return f"Given information:\n{self.reference_text()}\n\nQuery: {self._q.text}"
        return self._task

    def reference_text(self) -> str:
        """The current query's reference information, as the tools would show it (all rows)."""
        assert self._q is not None
        parts = []
        for desc, content in self._q.reference:
            body = _table(content, None, None) if isinstance(content, list) else str(content)
            parts.append(f"{desc}:\n{body}")
        return "\n\n".join(parts)

    def _outcome(self) -> tuple[bool, float]:
        v = self.last_evaluation
        if v is None:
            return False, 0.0
        checks = [
            c for c in (*v.commonsense.values(), *(v.hard or {}).values()) if c.passed is not None
        ]
        applicable = len(v.commonsense) + len(v.hard_asked)
        passed = sum(c.passed is True for c in checks)
        return v.final_pass, passed / applicable if applicable else 0.0

    def _extra_info(self) -> dict[str, Any]:
        q = self._q
        return {
            "level": q.level if q else None,
            "days": q.days if q else None,
            "mode": self.mode,
            "evaluation": self.last_evaluation.to_dict() if self.last_evaluation else None,
        }

    def episode_metrics(self) -> dict[str, list[int]]:
        """The benchmark's rates for this episode as [passed, applicable] pairs (a report
        sums them into delivery, micro / macro commonsense and hard, and final pass rates)."""
        q, v = self._q, self.last_evaluation
        if q is None:
            return {}
        asked = len(q.hard_asked)
        if v is None:  # nothing submitted: nothing delivered, every constraint failed
            return {"delivery": [0, 1], "commonsense micro": [0, 8], "commonsense macro": [0, 1],
                    "hard micro": [0, asked], "hard macro": [0, 1], "final pass": [0, 1]}  # fmt: skip
        cs = sum(c.passed is True for c in v.commonsense.values())
        hard = sum(v.hard[k].passed is True for k in v.hard_asked) if v.hard is not None else 0
        return {
            "delivery": [int(v.delivered), 1],
            "commonsense micro": [cs, 8],
            "commonsense macro": [int(v.commonsense_pass), 1],
            "hard micro": [hard, asked],
            "hard macro": [int(v.hard_pass), 1],
            "final pass": [int(v.final_pass), 1],
        }

    def skill_policy(self, memory: Any, **options: Any) -> Any:
        """The executable policy over ``memory`` (:class:`~.assemble.TravelPlannerSkill`)."""
        from memp.envs.travelplanner.assemble import TravelPlannerSkill

        return TravelPlannerSkill(memory, **options)

    # -- tools ----------------------------------------------------------------------
    def _step_after_end(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.last_evaluation is None:  # truncated, not submitted
            return super()._step_after_end(action)
        # after a submitted plan a step is answered, not refused: the agent reads why
        return "The plan was already submitted.", 0.0, True, False, self._info()

    def _step(self, action: str) -> tuple[str, float, bool, bool]:
        m = _CALL.match(action or "")
        if not m:
            example = (
                "Planner[Day 1: ...]"
                if self.mode == "sole-planning"
                else "FlightSearch[Ithaca, Charlotte, 2022-03-08]"
            )
            return f"Invalid action: write one tool call such as {example}.", 0.0, False, False
        tool, arg = m.group("tool"), m.group("arg").strip()
        if tool == "Planner":
            return self._submit(arg)
        if self.mode == "sole-planning":
            return (
                "This is sole-planning: the reference information is in the task; submit Planner[plan].",
                0.0, False, False,
            )  # fmt: skip
        handler = {
            "FlightSearch": self._flights,
            "GoogleDistanceMatrix": self._distance,
            "DistanceMatrix": self._distance,  # the short name agents also write
            "AccommodationSearch": self._accommodations,
            "RestaurantSearch": self._restaurants,
            "AttractionSearch": self._attractions,
            "CitySearch": self._cities,
            "NotebookWrite": self._notebook_write,
        }.get(tool)
        if handler is None:
            obs = f"Unknown tool {tool!r}. Tools: {', '.join(TOOLS)}."
        else:
            args = [a.strip() for a in arg.split(",")] if tool != "NotebookWrite" else [arg]
            try:
                obs = handler(*args)
            except TypeError:
                obs = f"Invalid arguments for {tool}: {arg!r}."
        return obs, 0.0, False, False

    def _remember(self, text: str) -> str:
        self._last_result = text
        return text

    def _flights(self, origin: str, dest: str, date: str) -> str:
        assert self._q is not None
        origin, dest = before_paren(origin), before_paren(dest)
        rows, seen = [], set()
        ref = [
            r for r in self._q.flights
            if (r.get("OriginCityName"), r.get("DestCityName"), r.get("FlightDate")) == (origin, dest, date)
        ]  # fmt: skip
        for r in (*ref, *self.db.flights_on(origin, dest, date)):
            key = (r.get("Flight Number"), r.get("FlightDate"))
            if key not in seen:  # a flight in both the reference and the table is shown once
                rows.append(r)
                seen.add(key)
        if not rows:
            return self._remember(f"There is no flight from {origin} to {dest} on {date}.")
        return self._remember(_table(rows, _FLIGHT_COLUMNS, self.max_rows))

    def _distance(self, origin: str, dest: str, mode: str = "self-driving") -> str:
        info = self.db.drive(origin, dest, mode)
        if info["cost"] is None:
            return self._remember(f"{mode}, from {origin} to {dest}, no valid information.")
        return self._remember(
            f"{mode}, from {before_paren(origin)} to {before_paren(dest)}, duration: {info['duration']}, "
            f"distance: {info['distance']}, cost: {info['cost']}"
        )

    def _search(self, table: str, city: str, columns: Iterable[str], what: str) -> str:
        rows = self.db.in_city(table, before_paren(city))
        if not rows:
            return self._remember(f"There is no {what} in this city.")
        return self._remember(_table(rows, columns, self.max_rows))

    def _accommodations(self, city: str) -> str:
        return self._search("accommodations", city, _ACCOMMODATION_COLUMNS, "accommodation")

    def _restaurants(self, city: str) -> str:
        cols = ("Name", "Average Cost", "Cuisines", "Aggregate Rating", "City")
        return self._search("restaurants", city, cols, "restaurant")

    def _attractions(self, city: str) -> str:
        return self._search("attractions", city, ("Name", "Address", "City"), "attraction")

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
        verdict = self.evaluator.evaluate(self._q, plan)
        self.last_evaluation = verdict
        failed = verdict.failed()
        obs = "Plan submitted. " + (
            "All constraints pass." if verdict.final_pass
            else "Failed: " + "; ".join(f"{k}: {why}" for k, why in failed.items())
        )  # fmt: skip
        return obs, float(verdict.final_pass), True, False

    # -- expert ---------------------------------------------------------------------
    def annotated_plan(self) -> list[dict[str, Any]] | None:
        """The current query's gold plan, where it has one (the training queries)."""
        if self._q is None or not self._q.gold_plan:
            return None
        return [dict(d) for d in self._q.gold_plan]

    def expert_actions(self) -> list[str] | None:
        """The gold plan submitted; in two-stage mode first the tool calls that gather
        what it uses. Only queries with a gold plan (the training split) have an expert."""
        plan = self.annotated_plan()
        if not plan or self._q is None:
            return None
        plan_call = f"Planner[{format_plan(plan)}]"
        if self.mode == "sole-planning":
            return [plan_call]
        q = self._q
        actions: list[str] = []
        if q.visiting_city_number > 1:
            actions += [f"CitySearch[{q.dest}]", f"NotebookWrite[Cities in {q.dest}]"]
        searched: set[str] = set()
        for i, day in enumerate(plan):
            value = str(day.get("transportation", "-"))
            org, dest = from_to(value)
            if org is None:
                org, dest = from_to(str(day.get("current_city", "")))
            if _present(value) and org and dest:
                low = value.lower()
                if "flight number" in low:
                    date = q.dates[min(i, len(q.dates) - 1)]
                    actions += [
                        f"FlightSearch[{org}, {dest}, {date}]",
                        f"NotebookWrite[Flights from {org} to {dest} on {date}]",
                    ]
                elif "taxi" in low or "self-driving" in low:
                    how = "taxi" if "taxi" in low else "self-driving"
                    actions += [
                        f"GoogleDistanceMatrix[{org}, {dest}, {how}]",
                        f"NotebookWrite[{how} from {org} to {dest}]",
                    ]
            for city in _cities(day):
                if city == q.org or city in searched:
                    continue
                searched.add(city)
                for tool, label in (
                    ("AccommodationSearch", "Accommodations"),
                    ("RestaurantSearch", "Restaurants"),
                    ("AttractionSearch", "Attractions"),
                ):
                    actions += [f"{tool}[{city}]", f"NotebookWrite[{label} in {city}]"]
        return [*actions, plan_call]

    def _close(self) -> None:
        self._q = None
