"""A TravelPlanner query's constraints, read from its text.

The benchmark's query records carry the constraints as fields (``org``, ``dest``,
``days``, ``local_constraint`` ...), but the 45 training queries shipped beside the
gold plans are text only. :func:`parse_constraints` recovers the same fields from the
wording the benchmark's queries use; what it cannot read is an :class:`InvalidInput`
naming the field and why, never a guess.

Values follow the benchmark's vocabulary: house rule one of ``smoking``, ``parties``,
``children under 10``, ``visitors``, ``pets``; room type one of ``entire room``,
``private room``, ``shared room``, ``not shared room``; transportation ``no flight``
or ``no self-driving``; cuisines among the seven the benchmark asks for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from memp.errors import InvalidInput

HOUSE_RULES = ("smoking", "parties", "children under 10", "visitors", "pets")
ROOM_TYPES = ("entire room", "private room", "shared room", "not shared room")
# What an accommodation's house rules say when they forbid what a house rule asks for.
BANNED_BY_RULE = {"smoking": "No smoking", "parties": "No parties",
                  "children under 10": "No children under 10", "visitors": "No visitors",
                  "pets": "No pets"}  # fmt: skip
TRANSPORT_RULES = ("no flight", "no self-driving")
CUISINES = ("Chinese", "American", "Italian", "Mexican", "Indian", "Mediterranean", "French")
# The benchmark's trips: 3 days visit one city, 5 days two cities of a state, 7 days three.
CITIES_FOR_DAYS = {3: 1, 5: 2, 7: 3}


def room_type_ok(room_type: str, got: str) -> bool:
    """Whether an accommodation's "room type" value is the query's ``room_type``."""
    return {
        "not shared room": got != "Shared room",
        "shared room": got == "Shared room",
        "private room": got == "Private room",
        "entire room": got == "Entire home/apt",
    }[room_type]


_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")  # fmt: skip
_WORDS = {"one": 1, "single": 1, "two": 2, "pair": 2, "couple": 2, "three": 3, "four": 4,
          "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}  # fmt: skip
_NUMBER = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten)"


@dataclass(frozen=True)
class Constraints:
    """What a query asks for, in the fields of the benchmark's query records."""

    org: str
    dest: str  # a city (one-city trips) or a state
    days: int
    visiting_city_number: int
    dates: tuple[str, ...]  # every day of the trip, ISO format
    people_number: int
    budget: float
    house_rule: str | None = None
    cuisine: tuple[str, ...] | None = None
    room_type: str | None = None
    transportation: str | None = None

    @property
    def local_constraint(self) -> dict[str, object]:
        """The benchmark's ``local_constraint`` record."""
        return {
            "house rule": self.house_rule,
            "cuisine": list(self.cuisine) if self.cuisine else None,
            "room type": self.room_type,
            "transportation": self.transportation,
        }

    @property
    def level(self) -> str:
        """The benchmark's difficulty: no local constraint (easy), one (medium), more (hard)."""
        n = sum(v is not None for v in self.local_constraint.values())
        return "easy" if n == 0 else "medium" if n == 1 else "hard"


def _fail(field: str, why: str, text: str) -> InvalidInput:
    short = text if len(text) <= 160 else text[:157] + "..."
    return InvalidInput(f"cannot read the {field} of the TravelPlanner query {short!r}: {why}")


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _WORDS[word.lower()]


# -- places -----------------------------------------------------------------------


def _mentions(text: str, names: list[str]) -> list[tuple[int, int, str]]:
    """Non-overlapping mentions of ``names`` in ``text``, longest names first, in text order.

    Longest first so that "Kansas City" is a city, not the state Kansas, and "Sault
    Ste. Marie" is one place."""
    taken: list[tuple[int, int, str]] = []
    for name in sorted(names, key=len, reverse=True):
        for m in re.finditer(rf"(?<![\w.]){re.escape(name)}(?!\w)", text):
            if all(m.end() <= s or m.start() >= e for s, e, _ in taken):
                taken.append((m.start(), m.end(), name))
    return sorted(taken)


# Words that put the place after them at the start of the trip.
_ORIGIN_CUE = re.compile(
    r"(?:\bfrom|\bdepart(?:ing|s)?(?:\s+from)?|\bstart(?:ing|s)?\s+(?:from|in|at)|"
    r"\bbegin(?:ning|s)?\s+(?:from|in|at)|\bleav(?:ing|e)(?:\s+from)?|\bset(?:ting)?\s+off\s+from|"
    r"\btak(?:ing|e)\s+off\s+from|\boriginat(?:ing|es?)\s+(?:from|in))\s+$",
    re.I,
)


def _places(text: str, visiting: int, cities: Mapping[str, str]) -> tuple[str, str]:
    states = set(cities.values())
    found = _mentions(text, sorted(set(cities) | states))
    origin_at = None
    for i, (start, _end, name) in enumerate(found):
        if name in cities and _ORIGIN_CUE.search(text[max(0, start - 30) : start]):
            origin_at = i
            break
    if origin_at is None:
        raise _fail(
            "origin", "no known city follows 'from', 'departing', 'starting in' or the like", text
        )
    org = found[origin_at][2]
    rest = [name for j, (_s, _e, name) in enumerate(found) if j != origin_at]
    if visiting == 1:
        # a one-city trip names its destination city (Washington the city, not the state)
        dest = next((n for n in rest if n in cities and n != org), None)
        if dest is None:
            dest = next((n for n in rest if n in states), None)
        if dest is None:
            raise _fail(
                "destination", "no city or state of the database is named besides the origin", text
            )
        return org, dest
    dest = next((n for n in rest if n in states), None)
    if dest is None:
        raise _fail(
            "destination",
            f"a trip to {visiting} cities names their state, and no state of the database is named",
            text,
        )
    return org, dest


# -- dates and numbers ----------------------------------------------------------------

_DATE_TOKEN = re.compile(
    r"\b(?P<month>" + "|".join(_MONTHS) + r")\b|\b(?P<day>\d{1,2})(?:st|nd|rd|th)\b", re.I
)


def _dates(text: str) -> tuple[date, date]:
    years = set(re.findall(r"\b(20\d\d)\b", text))
    if len(years) != 1:
        raise _fail(
            "dates",
            "the trip's year is not given once (e.g. 'March 16th to March 18th, 2022')",
            text,
        )
    year = int(years.pop())
    tokens = [(m.start(), m.group("month"), m.group("day")) for m in _DATE_TOKEN.finditer(text)]
    days = [(i, int(d)) for i, (_p, _m, d) in enumerate(tokens) if d]
    if len(days) < 2:
        raise _fail(
            "dates", "a first and a last day ('March 16th ... March 18th') are needed", text
        )

    def month_of(i: int) -> int:
        # the month named before the day ("March 16th"), else after it ("the 8th of March")
        before = [m for _p, m, _d in tokens[:i] if m]
        after = [m for _p, m, _d in tokens[i + 1 :] if m]
        name = before[-1] if before else after[0] if after else None
        if name is None:
            raise _fail("dates", "no month is named", text)
        return _MONTHS.index(name.lower()) + 1

    try:
        first = date(year, month_of(days[0][0]), days[0][1])
        last = date(year, month_of(days[-1][0]), days[-1][1])
    except ValueError as e:
        raise _fail("dates", str(e), text) from None
    if last < first:
        raise _fail("dates", f"the last day {last} is before the first {first}", text)
    return first, last


def _days(text: str, span: int) -> int:
    stated = re.search(rf"\b{_NUMBER}[- ]days?\b|\bspan(?:ning)?\s+(?:over\s+)?{_NUMBER}\s+days\b",
                       text, re.I)  # fmt: skip
    if stated:
        n = _number(stated.group(1) or stated.group(2))
    elif re.search(r"\b(?:a|one)[- ]week\b|\bweek-long\b|\bfor a week\b", text, re.I):
        n = 7
    else:
        return span
    if n != span:
        raise _fail("days", f"the text says {n} days but its dates span {span}", text)
    return n


def _visiting(text: str, days: int) -> int:
    stated = re.search(rf"\b{_NUMBER}\s+(?:different\s+|distinct\s+|separate\s+|unique\s+)?cities\b",
                       text, re.I)  # fmt: skip
    if stated:
        return _number(stated.group(1))
    if days in CITIES_FOR_DAYS:
        return CITIES_FOR_DAYS[days]
    raise _fail(
        "visiting city number",
        f"it is not stated ('2 cities') and a {days}-day trip is none of the benchmark's 3, 5 or 7",
        text,
    )


def _people(text: str) -> int:
    for pattern in (
        rf"\b(?:group|party)\s+of\s+{_NUMBER}\b",
        rf"\b{_NUMBER}\s+(?:people|persons?|individuals|travell?ers|adults)\b",
        r"\bfor\s+(?:a\s+)?(two|pair|couple|three|four|five|six|seven|eight|nine|ten|\d+)\b"
        r"(?!\s*-?\s*(?:days?|weeks?|nights?|cities|city|different|distinct|separate))",
    ):
        m = re.search(pattern, text, re.I)
        if m:
            return _number(m.group(1))
    # the benchmark's one-traveller wording, and its default when no one is counted
    return 1


def _budget(text: str) -> float:
    amounts = {float(a.replace(",", "")) for a in re.findall(r"\$\s?(\d[\d,]*(?:\.\d+)?)", text)}
    if not amounts:
        raise _fail("budget", "no dollar amount ('$1,700') is given", text)
    if len(amounts) > 1:
        raise _fail(
            "budget", f"several amounts are given ({sorted(amounts)}): which is the budget?", text
        )
    return amounts.pop()


# -- local constraints ------------------------------------------------------------------

_RULE_CUES = {
    "smoking": r"\bsmok(?:e|ing)\b",
    # "party of 5" counts people: only parties to hold are a house rule
    "parties": r"\bparties\b|\bhost(?:ing)?\s+a\s+party\b",
    "children under 10": r"\bchildren\b|\bkids\b",
    "visitors": r"\bvisitors?\b",
    "pets": r"\bpets?\b|\bpet-friendly\b",
}
_NEG = r"(?:\bnot\b|n't\b|\bno\b|\bavoid\b|\bwithout\b|\bnon\b|\bnever\b)"


def _house_rule(text: str) -> str | None:
    rules = [rule for rule, cue in _RULE_CUES.items() if re.search(cue, text, re.I)]
    if len(rules) > 1:
        raise _fail(
            "house rule", f"several are asked for ({', '.join(rules)}); the benchmark has one", text
        )
    return rules[0] if rules else None


def _room_type(text: str) -> str | None:
    if re.search(rf"{_NEG}[\w\s,'-]{{0,30}}?\bshared\s+rooms?\b", text, re.I):
        return "not shared room"
    types = {
        kind: re.search(rf"\b{kind.split()[0]}\s+rooms?\b", text, re.I) is not None
        for kind in ("entire room", "private room", "shared room")
    }
    asked = [k for k, v in types.items() if v]
    if len(asked) > 1:
        raise _fail("room type", f"several are asked for ({', '.join(asked)})", text)
    return asked[0] if asked else None


def _cuisine(text: str) -> tuple[str, ...] | None:
    found = sorted((m.start(), c) for c in CUISINES for m in [re.search(rf"\b{c}\b", text)] if m)
    return tuple(c for _p, c in found) or None


def _transportation(text: str) -> str | None:
    # the benchmark only ever rules a mode out, so a mode counts when a negation leads to it
    lead = rf"{_NEG}[\w\s,'-]{{0,60}}?"
    no_flight = re.search(rf"{lead}\b(?:flights?|flying|fly)\b", text, re.I)
    no_drive = re.search(
        rf"{lead}(?:self-driv\w*|self-drive|driv(?:e|ing)\s+(?:ourselves|myself))", text, re.I
    )
    if no_flight and no_drive:
        raise _fail(
            "transportation",
            "both flights and self-driving are ruled out; the benchmark rules out one",
            text,
        )
    return "no flight" if no_flight else "no self-driving" if no_drive else None


def parse_constraints(text: str, cities: Mapping[str, str]) -> Constraints:
    """The constraints of one query, read from its text; ``cities`` maps city -> state."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a TravelPlanner query must be non-empty text")
    text = " ".join(text.split())
    first, last = _dates(text)
    span = (last - first).days + 1
    days = _days(text, span)
    visiting = _visiting(text, days)
    org, dest = _places(text, visiting, cities)
    return Constraints(
        org=org,
        dest=dest,
        days=days,
        visiting_city_number=visiting,
        dates=tuple((first + timedelta(days=i)).isoformat() for i in range(span)),
        people_number=_people(text),
        budget=_budget(text),
        house_rule=_house_rule(text),
        cuisine=_cuisine(text),
        room_type=_room_type(text),
        transportation=_transportation(text),
    )
