"""Executable TravelPlanner memory: a tool-use procedure compiled from gold trajectories,
and a constraint-aware plan assembler whose day layout is learned from gold plans.

- :func:`compile_procedure` turns stored gold trajectories (tool calls + ``Planner[...]``)
  into a :class:`ToolProcedure`: which tools run once per city (``AccommodationSearch``,
  ``RestaurantSearch``, ``AttractionSearch``), which per leg of the trip
  (``FlightSearch``, ``GoogleDistanceMatrix`` per mode), whether the state's cities are
  looked up first, with the query's slots (origin, destination, dates, cities) in place
  of the values; and a :class:`Layout` per trip length: each day's city pattern and
  which fields the gold plans fill.
- :class:`TravelPlannerSkill` plays a query with them and no LLM: it reads the query's
  constraints from its text (what the query says: budget, people, house rule, room
  type, cuisine, transportation), runs the procedure, and assembles a plan from what the
  tools returned. It never sees the evaluator's verdict or the query's gold plan before
  it submits.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memp.envs.travelplanner.constraints import (
    BANNED_BY_RULE,
    Constraints,
    parse_constraints,
    room_type_ok,
)
from memp.envs.travelplanner.database import _num, _present, before_paren, from_to
from memp.envs.travelplanner.evaluate import MEALS, format_plan, parse_plan
from memp.errors import InvalidInput
from memp.types import Step, Trajectory

if TYPE_CHECKING:
    from memp.envs.travelplanner.env import TravelPlannerEnv

CITY_TOOLS = ("AccommodationSearch", "RestaurantSearch", "AttractionSearch")
_CALL = re.compile(r"^\s*(?P<tool>[A-Za-z]+)\s*\[(?P<arg>.*)\]\s*$", re.S)


# -- what the tools answered ------------------------------------------------------------


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of a search answer ("Name: X | City: Y" per line); [] for "There is no ..."."""
    rows = []
    for line in text.splitlines():
        if " | " not in line or line.startswith("..."):
            continue
        row = dict(p.split(": ", 1) for p in line.split(" | ") if ": " in p)
        if row:
            rows.append({k.strip(): v.strip() for k, v in row.items()})
    return rows


def drive_answer(text: str) -> dict[str, Any] | None:
    """A GoogleDistanceMatrix answer -> its text and cost, None when there is no route."""
    m = re.search(r"cost:\s*(\d+)", text)
    if not m or "no valid information" in text:
        return None
    return {"text": text.strip(), "cost": int(m.group(1))}


# -- the compiled procedure ---------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """A trip shape learned from gold plans of one length: per day, the city pattern
    (``("travel", i, j)`` from stop i to stop j, or ``("stay", i)``; stop 0 is the origin,
    1.. the visited cities in order) and how often each field was filled."""

    days: tuple[tuple[Any, ...], ...]
    filled: tuple[dict[str, float], ...]  # per day: field -> share of gold plans filling it
    attractions: tuple[int, ...]  # per day: the usual number of attractions
    meal_side: tuple[dict[str, str], ...]  # travel days: meal -> "from" | "to"

    @property
    def stops(self) -> int:
        return max(i for d in self.days for i in d[1:])

    def leg_days(self) -> list[tuple[int, int, int]]:
        """(day index, from stop, to stop) of each day of travel."""
        return [(k, d[1], d[2]) for k, d in enumerate(self.days) if d[0] == "travel"]

    def nights(self, stop: int) -> int:
        """Nights spent in ``stop`` (the night's city is the day's last one, last day excluded)."""
        return sum(1 for d in self.days[:-1] if d[-1] == stop)


@dataclass
class ToolProcedure:
    """Which tools the gold trajectories called, with the query's slots for values."""

    city_search: bool
    city_tools: tuple[str, ...]
    leg_tools: tuple[tuple[str, str | None], ...]  # (tool, mode) per leg
    notebook: bool
    layouts: dict[int, Layout]
    sources: list[str] = field(default_factory=list)
    examples: int = 0

    def describe(self) -> str:
        """The procedure as text (what the report and a reader see)."""
        lines = []
        if self.city_search:
            lines.append("CitySearch[{state}] -> candidate {city_i}")
        for t in self.city_tools:
            lines.append(f"for each {{city_i}}: {t}[{{city_i}}]")
        for t, mode in self.leg_tools:
            arg = "{from}, {to}, {date of the leg}" if mode is None else f"{{from}}, {{to}}, {mode}"
            lines.append(f"for each leg: {t}[{arg}]")
        if self.notebook:
            lines.append("NotebookWrite[...] after each search")
        lines.append("Planner[plan assembled under the query's constraints]")
        return "\n".join(f"{i}. {x}" for i, x in enumerate(lines, 1))


def _split_args(arg: str) -> list[str]:
    return [a.strip() for a in arg.split(",")]


def _day_pattern(day: Mapping[str, Any], stops: dict[str, int], org: str) -> tuple[Any, ...]:
    cur = str(day.get("current_city", ""))
    a, b = from_to(cur)
    if a and b:
        for c in (a, b):
            stops.setdefault(c, 0 if c == org else len([s for s in stops if s != org]) + 1)
        return ("travel", stops[a], stops[b])
    city = before_paren(cur)
    stops.setdefault(city, 0 if city == org else len([s for s in stops if s != org]) + 1)
    return ("stay", stops[city])


def learn_layouts(
    examples: Iterable[tuple[Constraints, list[dict[str, Any]]]],
) -> dict[int, Layout]:
    """Trip length -> the most common day layout of the gold plans of that length."""
    by_days: dict[int, list[tuple[tuple[Any, ...], list[dict[str, Any]], dict[str, int]]]] = {}
    for c, plan in examples:
        plan = plan[: c.days]
        stops: dict[str, int] = {c.org: 0}
        pattern = tuple(_day_pattern(d, stops, c.org) for d in plan)
        by_days.setdefault(c.days, []).append((pattern, plan, stops))
    out: dict[int, Layout] = {}
    for days, items in by_days.items():
        pattern, _n = Counter(p for p, _pl, _s in items).most_common(1)[0]
        same = [(pl, st) for p, pl, st in items if p == pattern]
        filled, attractions, sides = [], [], []
        for k, d in enumerate(pattern):
            share = {
                f: sum(_present(pl[k].get(f)) for pl, _st in same) / len(same)
                for f in ("breakfast", "lunch", "dinner", "attraction", "accommodation")
            }
            filled.append(share)
            counts = sorted(
                len([a for a in str(pl[k].get("attraction", "")).split(";") if a.strip()])
                if _present(pl[k].get("attraction")) else 0
                for pl, _st in same
            )  # fmt: skip
            attractions.append(counts[len(counts) // 2])
            side: dict[str, str] = {}
            if d[0] == "travel":
                for meal in MEALS:
                    votes = Counter()
                    for pl, st in same:
                        value = str(pl[k].get(meal, "-"))
                        if not _present(value):
                            continue
                        city = before_paren(value.rsplit(",", 1)[-1].strip())
                        votes["from" if st.get(city) == d[1] else "to"] += 1
                    side[meal] = votes.most_common(1)[0][0] if votes else "to"
            sides.append(side)
        out[days] = Layout(pattern, tuple(filled), tuple(attractions), tuple(sides))
    return out


def compile_procedure(
    examples: Sequence[tuple[str, Sequence[str]]],
    cities: Mapping[str, str],
    *,
    sources: Sequence[str] = (),
) -> ToolProcedure:
    """Compile ``(query text, actions)`` gold trajectories into one :class:`ToolProcedure`.

    A call's values are matched against the query's slots (the origin, the destination,
    the trip's dates, the cities visited): a search on a visited city is a per-city
    step, a flight or drive between two stops a per-leg step. Steps that differ across
    the trajectories (one flew, another drove) are all kept: each is a way to cover a leg.
    """
    city_tools: dict[str, None] = {}
    leg_tools: dict[tuple[str, str | None], None] = {}
    city_search = notebook = False
    plans: list[tuple[Constraints, list[dict[str, Any]]]] = []
    used = 0
    for text, actions in examples:
        try:
            c = parse_constraints(text, cities)
        except InvalidInput:
            continue  # a stored task that is not a TravelPlanner query teaches nothing here
        used += 1
        for action in actions:
            m = _CALL.match(action)
            if not m:
                continue
            tool, arg = m.group("tool"), m.group("arg")
            if tool == "Planner":
                plan = parse_plan(arg)
                if plan:
                    plans.append((c, plan))
            elif tool == "CitySearch" and arg.strip() == c.dest:
                city_search = True
            elif tool in CITY_TOOLS:
                city_tools[tool] = None
            elif tool == "FlightSearch":
                leg_tools[("FlightSearch", None)] = None
            elif tool in ("GoogleDistanceMatrix", "DistanceMatrix"):
                args = _split_args(arg)
                leg_tools[
                    ("GoogleDistanceMatrix", args[2] if len(args) > 2 else "self-driving")
                ] = None
            elif tool == "NotebookWrite":
                notebook = True
    if not plans:
        raise InvalidInput(
            "no gold trajectory with a plan to compile a TravelPlanner procedure from"
        )
    order = {t: i for i, t in enumerate(CITY_TOOLS)}
    return ToolProcedure(
        city_search=city_search,
        city_tools=tuple(sorted(city_tools, key=order.get)),  # type: ignore[arg-type]
        leg_tools=tuple(leg_tools),
        notebook=notebook,
        layouts=learn_layouts(plans),
        sources=list(sources),
        examples=used,
    )


# -- the assembler ----------------------------------------------------------------------


@dataclass
class Gathered:
    """What the tool calls returned, by city and by leg."""

    accommodations: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    restaurants: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    attractions: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    flights: dict[tuple[str, str, str], list[dict[str, str]]] = field(default_factory=dict)
    drives: dict[tuple[str, str, str], dict[str, Any] | None] = field(default_factory=dict)


def _rooms(people: int, row: Mapping[str, str]) -> int:
    return math.ceil(people / max(1.0, _num(row.get("maximum occupancy", 1)) or 1.0))


def stay_options(
    c: Constraints, rows: Iterable[dict[str, str]], nights: int
) -> list[dict[str, str]]:
    """Accommodations that the query's room type and house rule allow for ``nights``
    nights, cheapest for the group first."""
    ok = []
    for r in rows:
        if c.room_type and not room_type_ok(c.room_type, r.get("room type", "")):
            continue
        if c.house_rule and BANNED_BY_RULE[c.house_rule] in r.get("house_rules", ""):
            continue
        if _num(r.get("minimum nights", 1)) > nights or math.isnan(_num(r.get("price"))):
            continue
        ok.append(r)
    return sorted(ok, key=lambda r: _num(r.get("price", 0)) * _rooms(c.people_number, r))


# a query that asks for nothing: the stay rules of the relaxed fallback
_ANY = Constraints(org="", dest="", days=0, visiting_city_number=0, dates=(), people_number=1,
                   budget=0.0)  # fmt: skip


def _flight_text(r: Mapping[str, str]) -> str:
    return (
        f"Flight Number: {r['Flight Number']}, from {r['OriginCityName']} to {r['DestCityName']}, "
        f"Departure Time: {r.get('DepTime', '')}, Arrival Time: {r.get('ArrTime', '')}"
    )


def transport(
    c: Constraints, legs: Sequence[tuple[str, str, str]], got: Gathered
) -> tuple[list[str], float] | None:
    """The cheapest consistent way to cover ``legs`` ((from, to, date)): all
    self-driving, or each leg by flight or taxi, as the query allows; None when none."""
    people = c.people_number
    options: list[tuple[list[str], float]] = []
    if c.transportation != "no self-driving":
        drives = [got.drives.get((a, b, "self-driving")) for a, b, _d in legs]
        if all(drives):
            options.append((
                [f"Self-driving, {d['text'].split(', ', 1)[1]}" for d in drives],  # type: ignore[index]
                sum(d["cost"] * math.ceil(people / 5) for d in drives),  # type: ignore[index]
            ))  # fmt: skip
    texts, total = [], 0.0
    for a, b, d in legs:
        best: tuple[float, str] | None = None
        if c.transportation != "no flight":
            for r in got.flights.get((a, b, d), []):
                cost = _num(r.get("Price", "nan")) * people
                if not math.isnan(cost) and (best is None or cost < best[0]):
                    best = (cost, _flight_text(r))
        taxi = got.drives.get((a, b, "taxi"))
        if taxi:
            cost = taxi["cost"] * math.ceil(people / 4)
            if best is None or cost < best[0]:
                best = (cost, f"Taxi, {taxi['text'].split(', ', 1)[1]}")
        if best is None:
            break
        total += best[0]
        texts.append(best[1])
    else:
        options.append((texts, total))
    return min(options, key=lambda o: o[1]) if options else None


def assemble(
    c: Constraints, layout: Layout, route: Sequence[str], got: Gathered, *, relaxed: bool = False
) -> tuple[list[dict[str, Any]], float] | None:
    """A plan for ``c`` over ``route`` (the visited cities in order) from ``got``, and
    its cost by the benchmark's rule; None when some stop cannot be covered.

    Accommodation: per city the cheapest the room type, house rule and minimum nights
    allow. Transport: :func:`transport`. Meals: the days the layout fills, each asked
    cuisine first covered by its cheapest restaurant, then the cheapest unused ones;
    meals on days of travel (not needed for a complete plan) are dropped, dearest
    first, while the plan is over budget. Attractions: unused ones of the day's city.
    ``relaxed``: what cannot be covered is left out ("-"; the cheapest stay whatever its
    rules) so that a plan is still delivered.
    """
    stops = [c.org, *route]
    people = c.people_number
    legs = [(stops[i], stops[j], c.dates[k]) for k, i, j in layout.leg_days()]
    way = transport(c, legs, got)
    if way is None:
        if not relaxed:
            return None
        way = (["-"] * len(legs), 0.0)
    leg_text, cost = way
    stay: dict[int, dict[str, str]] = {}
    for s in range(1, len(stops)):
        opts = stay_options(c, got.accommodations.get(stops[s], []), layout.nights(s))
        if not opts and relaxed:
            opts = stay_options(_ANY, got.accommodations.get(stops[s], []), 10**6)
        if not opts:
            return None
        stay[s] = opts[0]
        cost += _num(opts[0]["price"]) * _rooms(people, opts[0]) * layout.nights(s)
    # meal slots: (day, meal, city, required)
    slots: list[tuple[int, str, str, bool]] = []
    for k, d in enumerate(layout.days):
        for meal in MEALS:
            if d[0] == "stay":
                slots.append((k, meal, stops[d[1]], True))
            elif layout.filled[k].get(meal, 0) >= 0.5:
                side = layout.meal_side[k].get(meal, "to")
                city = stops[d[1] if side == "from" else d[2]]
                if city != c.org:  # the origin's restaurants were never searched
                    slots.append((k, meal, city, False))
    chosen: dict[tuple[int, str], dict[str, str]] = {}
    used: set[str] = set()

    def pick(slot: tuple[int, str, str, bool], cuisine: str | None = None) -> bool:
        rows = [
            r for r in got.restaurants.get(slot[2], [])
            if r.get("Name") not in used and not math.isnan(_num(r.get("Average Cost")))
        ]  # fmt: skip
        if cuisine:
            rows = [r for r in rows if cuisine in r.get("Cuisines", "")]
        if not rows:
            return False
        r = min(rows, key=lambda r: _num(r.get("Average Cost", 0)))
        chosen[(slot[0], slot[1])] = r
        used.add(r.get("Name", ""))
        return True

    needed = {(k, m) for k, m, _c, req in slots if req}
    for cuisine in c.cuisine or ():
        # required slots first: a cuisine met there costs no extra meal
        for slot in sorted(slots, key=lambda s: not s[3]):
            if (slot[0], slot[1]) not in chosen and pick(slot, cuisine):
                needed.add((slot[0], slot[1]))
                break
    for slot in slots:
        if (slot[0], slot[1]) not in chosen and not pick(slot) and slot[3] and not relaxed:
            return None
    meal_cost = {key: _num(r.get("Average Cost", 0)) * people for key, r in chosen.items()}
    cost += sum(meal_cost.values())
    for key in sorted(set(chosen) - needed, key=lambda k: -meal_cost[k]):
        if cost <= c.budget:
            break
        cost -= meal_cost.pop(key)
        chosen.pop(key)
    seen_attr: set[str] = set()
    plan: list[dict[str, Any]] = []
    legs_iter = iter(leg_text)
    for k, d in enumerate(layout.days):
        here = stops[d[-1]]
        day: dict[str, Any] = {"days": k + 1}
        if d[0] == "travel":
            day["current_city"] = f"from {stops[d[1]]} to {stops[d[2]]}"
            day["transportation"] = next(legs_iter)
        else:
            day["current_city"] = here
            day["transportation"] = "-"
        for meal in MEALS:
            r = chosen.get((k, meal))
            day[meal] = f"{r['Name']}, {r['City']}" if r else "-"
        want = max(layout.attractions[k], 1 if d[0] == "stay" else 0)
        names = []
        if here != c.org:
            for r in got.attractions.get(here, []):
                if len(names) >= want:
                    break
                if r.get("Name") and r["Name"] not in seen_attr:
                    seen_attr.add(r["Name"])
                    names.append(f"{r['Name']}, {here}")
        if d[0] == "stay" and not names and not relaxed:
            return None
        day["attraction"] = ";".join(names) + ";" if names else "-"
        last = k == len(layout.days) - 1
        acc = None if last or d[-1] == 0 else stay.get(d[-1])
        day["accommodation"] = f"{acc['NAME']}, {acc['city']}" if acc else "-"
        plan.append(day)
    return plan, cost


# -- the policy ----------------------------------------------------------------------------


class TravelPlannerSkill:
    """Plays a TravelPlanner query with the executable memory and no LLM.

    ``memory``: the procedures stored from gold trajectories (one per training query;
    with cross-validation, none of the query played). ``max_steps`` bounds the tool calls
    (the plan is submitted within it). ``candidates``: how many of a state's cities the
    procedure explores beyond the number the trip visits. ``llm`` / ``fallback`` are
    accepted for the runner's signature; the assembler needs neither.
    """

    name = "travelplanner-skill"

    def __init__(
        self,
        memory: Any,
        *,
        llm: Any = None,
        max_steps: int = 40,
        fallback: Any = None,
        candidates: int = 2,
        routes: int = 6,
    ) -> None:
        self.memory = memory
        self.max_steps = max_steps
        self.candidates = candidates
        self.routes = routes
        self.fallback = fallback

    def procedure(self, env: TravelPlannerEnv, c: Constraints) -> ToolProcedure | None:
        """The procedure compiled from every stored gold trajectory (layouts by trip length)."""
        procs = [p for p in self.memory.list(environment=env.name) if p.trajectory is not None]
        examples = []
        for p in procs:
            actions = [s.action for s in p.trajectory.steps]
            examples.append((p.task, actions, p.id))
        try:
            return compile_procedure(
                [(t, a) for t, a, _i in examples],
                env.db.city_state,
                sources=[i for _t, _a, i in examples],
            )
        except InvalidInput:
            return None

    def run(self, env: TravelPlannerEnv, episode: int) -> Trajectory:
        from memp.agents.base import episode_trajectory

        _obs, info = env.reset(episode=episode)
        task = info.get("task") or env.task
        steps: list[Step] = []
        state = {"done": False, "won": False, "reward": 0.0}

        def call(action: str) -> str | None:
            # the last step of the budget is kept for the plan
            if state["done"] or (
                len(steps) >= self.max_steps - 1 and not action.startswith("Planner[")
            ):
                return None
            t0 = time.perf_counter()
            obs, reward, terminated, truncated, inf = env.step(action)
            steps.append(Step(action=action, observation=obs, reward=float(reward),
                              latency_s=time.perf_counter() - t0, actor="skill"))  # fmt: skip
            state["reward"] += float(reward)
            state["won"] = bool(inf.get("won", False))
            state["done"] = terminated or truncated
            return obs

        c = parse_constraints(task, env.db.city_state)
        proc = self.procedure(env, c)
        notes: dict[str, Any] = {}
        if proc is None:
            notes["stopped"] = "no procedure"
        else:
            notes["retrieved"] = proc.sources
            notes["procedure"] = proc.describe()
            plan = self._play(env, c, proc, call, notes)
            if plan is not None:
                call(f"Planner[{format_plan(plan)}]")
            else:
                notes.setdefault("stopped", "no plan could be assembled")
        return episode_trajectory(
            env, episode, self.name, task=task, steps=steps, won=state["won"],
            reward=state["reward"], model=None, score=float(env._outcome()[1]), **notes,
        )  # fmt: skip

    def _play(
        self,
        env: TravelPlannerEnv,
        c: Constraints,
        proc: ToolProcedure,
        call: Any,
        notes: dict[str, Any],
    ) -> list[dict[str, Any]] | None:
        layout = proc.layouts.get(c.days)
        if layout is None:
            notes["stopped"] = f"no gold plan of a {c.days}-day trip in memory"
            return None
        got = Gathered()

        def search(action: str, label: str) -> str | None:
            obs = call(action)
            if obs is not None and proc.notebook:
                call(f"NotebookWrite[{label}]")
            return obs

        n = layout.stops
        if c.visiting_city_number > 1 or (proc.city_search and c.dest in env.db.state_cities):
            obs = search(f"CitySearch[{c.dest}]", f"Cities in {c.dest}")
            cands = [x.strip() for x in (obs or "").split(",") if x.strip() and x.strip() != c.org]
            cands = [x for x in cands if x in env.db.city_state][: n + self.candidates]
        else:
            cands = [c.dest]
        table = {"AccommodationSearch": got.accommodations, "RestaurantSearch": got.restaurants,
                 "AttractionSearch": got.attractions}  # fmt: skip
        for city in cands:
            for tool in proc.city_tools:
                obs = search(f"{tool}[{city}]", f"{tool.removesuffix('Search')} in {city}")
                if obs is not None:
                    table[tool][city] = table_rows(obs)
        nights = min((layout.nights(s) for s in range(1, n + 1)), default=1)
        # a city can be visited when it has a stay the query allows, meals and sights
        feasible = [
            x for x in cands
            if stay_options(c, got.accommodations.get(x, []), nights)
            and got.restaurants.get(x) and got.attractions.get(x)
        ]  # fmt: skip
        notes["candidates"] = cands
        if len(feasible) < n:  # try the others too: a route's stays may allow more nights
            feasible += [x for x in cands if x not in feasible]

        def local(route: Sequence[str]) -> float:
            total = 0.0
            for s, city in enumerate(route, 1):
                opts = stay_options(c, got.accommodations.get(city, []), layout.nights(s))
                total += _num(opts[0]["price"]) * _rooms(c.people_number, opts[0]) if opts else 1e9
            return total

        routes = sorted(itertools.permutations(feasible, n), key=local)[: self.routes]
        best: tuple[list[dict[str, Any]], float] | None = None
        for route in routes:
            stops = [c.org, *route]
            for k, i, j in layout.leg_days():
                a, b, d = stops[i], stops[j], c.dates[k]
                for tool, mode in proc.leg_tools:
                    if c.transportation == "no flight" and tool == "FlightSearch":
                        continue
                    if c.transportation == "no self-driving" and mode == "self-driving":
                        continue
                    if tool == "FlightSearch" and (a, b, d) not in got.flights:
                        obs = search(
                            f"FlightSearch[{a}, {b}, {d}]", f"Flights from {a} to {b} on {d}"
                        )
                        if obs is not None:
                            got.flights[(a, b, d)] = table_rows(obs)
                    elif tool == "GoogleDistanceMatrix" and (a, b, mode) not in got.drives:
                        obs = search(
                            f"GoogleDistanceMatrix[{a}, {b}, {mode}]", f"{mode} from {a} to {b}"
                        )
                        if obs is not None:
                            got.drives[(a, b, mode or "self-driving")] = drive_answer(obs)
            made = assemble(c, layout, route, got)
            if made is not None and (best is None or made[1] < best[1]):
                best = made
            if best is not None and best[1] <= c.budget:
                break
        if best is None and routes:  # deliver a plan all the same, what is missing left out
            best = assemble(c, layout, routes[0], got, relaxed=True)
            notes["relaxed"] = best is not None
        if best is not None:
            notes["planned_cost"] = best[1]
        return best[0] if best else None
