"""TravelPlanner queries: their text, constraints, reference information and gold plan.

Two file formats are read:

- the benchmark's query records (``.jsonl`` / ``.json`` / ``.csv`` as exported from the
  Hugging Face dataset ``osunlp/TravelPlanner``): the constraints are fields;
- the chat-format gold plans of the training queries (``train_gold_plans.jsonl``: a
  system prompt, a user turn ending in ``Query: ...``, the assistant's plan): the
  constraints are parsed from the query text (:mod:`.constraints`) and the reference
  information comes from ``train_ref_info.jsonl`` (one JSON object per query,
  ``{description: rows or text}``) when it is beside the database.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memp.envs.travelplanner.constraints import (
    HOUSE_RULES,
    ROOM_TYPES,
    TRANSPORT_RULES,
    Constraints,
    parse_constraints,
)
from memp.envs.travelplanner.database import _num, _parse_literal
from memp.errors import InvalidInput

# A reference entry: its description ("Flight from A to B on 2022-03-16") and content
# (rows of a table, or the tool's text answer such as "There is no flight ...").
Reference = tuple[str, Any]


@dataclass(frozen=True)
class Query(Constraints):
    """One query: its constraints plus what the benchmark gives with it."""

    text: str = ""
    gold_plan: list[dict[str, Any]] | None = None
    reference: tuple[Reference, ...] = ()
    level_label: str | None = None  # the record's own level, where it has one

    @property
    def level(self) -> str:
        return self.level_label or super().level

    @property
    def flights(self) -> list[dict[str, str]]:
        """The flights of the reference information, as rows of the flights table."""
        rows = []
        for desc, content in self.reference:
            if desc.startswith("Flight") and isinstance(content, list):
                rows += [{k: str(v) for k, v in r.items()} for r in content if isinstance(r, dict)]
        return rows

    @property
    def hard_asked(self) -> tuple[str, ...]:
        """The hard constraints the query has (official keys): the budget, and each
        local constraint it sets."""
        keys = {"house rule": "valid_room_rule", "room type": "valid_room_type",
                "cuisine": "valid_cuisine", "transportation": "valid_transportation"}  # fmt: skip
        return ("valid_cost", *(k for f, k in keys.items() if self.local_constraint[f] is not None))

    def record(self) -> dict[str, Any]:
        """The query in the benchmark's record fields."""
        return {
            "org": self.org, "dest": self.dest, "days": self.days,
            "visiting_city_number": self.visiting_city_number, "date": list(self.dates),
            "people_number": self.people_number, "local_constraint": self.local_constraint,
            "budget": self.budget, "query": self.text, "level": self.level,
        }  # fmt: skip


def _days_of(plan: Any) -> list[dict[str, Any]] | None:
    days = _parse_literal(plan) if isinstance(plan, str) else plan
    if not isinstance(days, list):
        return None
    return [d for d in days if isinstance(d, dict) and "current_city" in d] or None


def _choice(field_name: str, value: Any, valid: tuple[str, ...], where: str) -> str | None:
    if value is None or value == "":
        return None
    value = "parties" if value == "parities" else value  # the benchmark's spelling of parties
    if value not in valid:
        raise InvalidInput(f"{where}: {field_name} {value!r} is none of {', '.join(valid)}")
    return str(value)


def query_from_record(r: Mapping[str, Any], where: str) -> Query:
    """A query from the benchmark's record fields (the Hugging Face dataset's columns)."""
    try:
        local = dict(_parse_literal(r.get("local_constraint")) or {})
        dates = _parse_literal(r["date"])
        dates = [dates] if isinstance(dates, str) else list(dates)
        cuisine = local.get("cuisine")
        ref = _parse_literal(r.get("reference_information") or [])
        return Query(
            org=str(r["org"]),
            dest=str(r["dest"]),
            days=int(_num(r["days"])),
            visiting_city_number=int(_num(r["visiting_city_number"])),
            dates=tuple(str(d) for d in dates),
            people_number=int(_num(r["people_number"])),
            budget=_num(r["budget"]),
            house_rule=_choice("house rule", local.get("house rule"), HOUSE_RULES, where),
            cuisine=tuple(cuisine) if cuisine else None,
            room_type=_choice("room type", local.get("room type"), ROOM_TYPES, where),
            transportation=_choice(
                "transportation", local.get("transportation"), TRANSPORT_RULES, where
            ),
            text=str(r.get("query") or ""),
            gold_plan=_days_of(r.get("annotated_plan")),
            reference=tuple(
                (str(e.get("Description", "")), e.get("Content"))
                for e in ref
                if isinstance(e, dict)
            ),
            level_label=str(r["level"]) if r.get("level") else None,
        )
    except (KeyError, ValueError, SyntaxError, TypeError) as e:
        if isinstance(e, InvalidInput):
            raise
        raise InvalidInput(f"{where} is not a TravelPlanner query record: {e!r}") from e


def query_from_text(
    text: str,
    cities: Mapping[str, str],
    *,
    gold_plan: Any = None,
    reference: Mapping[str, Any] | None = None,
) -> Query:
    """A query from its text alone; the constraints are parsed (:func:`parse_constraints`)."""
    c = parse_constraints(text, cities)
    return Query(
        **{f: getattr(c, f) for f in Constraints.__dataclass_fields__},
        text=" ".join(text.split()),
        gold_plan=_days_of(gold_plan) if gold_plan is not None else None,
        reference=tuple((reference or {}).items()),
    )


def _chat_query(messages: list[dict[str, Any]], where: str) -> tuple[str, Any]:
    user = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
    if "Query:" not in user:
        raise InvalidInput(f"{where}: the user turn has no 'Query:' line")
    answer = next((m.get("content") for m in messages if m.get("role") == "assistant"), None)
    return user[user.rfind("Query:") + len("Query:") :].strip(), answer


def _check_reference(q: Query, where: str) -> None:
    """The reference information must be this query's: its first trip leaves the origin
    on the first day (a file in another order would pair queries with others' data)."""
    first = next((d for d, _c in q.reference if d.startswith("Flight from ")), None)
    if first is None:
        return
    if not (first.startswith(f"Flight from {q.org} to ") and first.endswith(q.dates[0])):
        raise InvalidInput(
            f"{where}: the reference information ({first!r}) is not for this query "
            f"(from {q.org} on {q.dates[0]}); are the query and reference files in the same order?"
        )


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, list) else data.get("data", [data])
    if path.suffix == ".csv":
        csv.field_size_limit(1 << 30)
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    raise InvalidInput(f"unsupported query file {path}: use .jsonl, .json or .csv")


def load_queries(
    path: Path, cities: Mapping[str, str], reference: Path | None = None
) -> list[Query]:
    """Every query of a file, in file order (see the module docstring for the formats).

    ``reference``: a ``train_ref_info.jsonl``-style file, one entry per query in the
    same order, for chat-format queries (record-format queries carry their own).
    """
    rows = _read_rows(path)
    refs: list[dict[str, Any]] = []
    if reference is not None and reference.is_file():
        refs = [
            json.loads(x) for x in reference.read_text(encoding="utf-8").splitlines() if x.strip()
        ]
    out: list[Query] = []
    for i, r in enumerate(rows):
        where = f"query {i} of {path}"
        if not isinstance(r, dict):
            raise InvalidInput(f"{where} is not an object")
        if "messages" in r:
            text, answer = _chat_query(list(r["messages"]), where)
            try:
                q = query_from_text(
                    text, cities, gold_plan=answer, reference=refs[i] if i < len(refs) else None
                )
            except InvalidInput as e:
                raise InvalidInput(f"{where}: {e}") from None
            _check_reference(q, where)
        else:
            q = query_from_record(r, where)
        out.append(q)
    return out


def disagreements(q: Query, cities: Mapping[str, str]) -> dict[str, tuple[Any, Any]]:
    """Where a record's fields and its own query text disagree: field -> (recorded,
    read from the text). A record without text has nothing to compare; a text that
    cannot be read is an :class:`InvalidInput`."""
    if not q.text:
        return {}
    read = parse_constraints(q.text, cities)
    out: dict[str, tuple[Any, Any]] = {}
    for name in Constraints.__dataclass_fields__:
        mine, theirs = getattr(q, name), getattr(read, name)
        if name == "cuisine":  # the order cuisines are named in does not matter
            mine, theirs = set(mine or ()), set(theirs or ())
        if mine != theirs:
            out[name] = (getattr(q, name), getattr(read, name))
    return out


def resolve_queries(queries: Path, split: str) -> Path | None:
    """A query file, or ``<split>.jsonl|json|csv`` in a folder."""
    if queries.is_file():
        return queries
    for ext in (".jsonl", ".json", ".csv"):
        cand = queries / f"{split}{ext}"
        if cand.exists():
            return cand
    return None


__all__ = [
    "Query",
    "Reference",
    "load_queries",
    "query_from_record",
    "query_from_text",
    "resolve_queries",
]
