"""Text matching for skills: which known things an action names, abstract action forms,
values read from observations, and how alike two action forms are.

Everything here is plain text work; what an environment means by an action (moving,
a no-op, a failure, what an observation shows) comes through
:class:`memp.envs.base.ActionSemantics`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from memp.template import normalize

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics

READ_PREFIX = "read"  # slots bound from what a step reads, not from the task: read1, read2 ...

_TOKEN = re.compile(r"\{[^}]*\}|<[^>]*>|[a-z0-9]+")
PIECE = re.compile(r"\{[^}]*\}|<[^>]*>|\S+")
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
FILLER = frozenset({"a", "an", "the", "some", "from", "in", "into", "on", "to", "with", "of", "at"})


class Mentions:
    """Finds known instance names in text (whole words, longest first)."""

    def __init__(self, semantics: ActionSemantics) -> None:
        self.semantics = semantics
        self.names: set[str] = set()
        self._types: dict[str, str] = {}
        self._rx: re.Pattern[str] | None = None

    def add(self, names: Iterable[str | None]) -> None:
        new = {normalize(n) for n in names if n and normalize(n)} - self.names
        if new:
            self.names |= new
            self._rx = None

    def type_of(self, name: str) -> str:
        t = self._types.get(name)
        if t is None:
            t = self._types[name] = normalize(self.semantics.entity_type(name))
        return t

    def find(self, text: str) -> list[tuple[int, int, str]]:
        if not self.names:
            return []
        if self._rx is None:
            alts = "|".join(re.escape(n) for n in sorted(self.names, key=len, reverse=True))
            self._rx = re.compile(rf"(?<![a-z0-9])(?:{alts})(?![a-z0-9])")
        return [(m.start(), m.end(), m.group(0)) for m in self._rx.finditer(text)]

    def named(self, action: str) -> set[str]:
        """The known names ``action`` mentions."""
        return {n for _, _, n in self.find(normalize(action))}

    def observe(self, action: str, observation: str) -> list[str]:
        seen = [normalize(s) for s in self.semantics.seen_objects(observation)]
        self.add(seen)
        self.add([self.semantics.location(action)])
        return seen


def look_action(semantics: ActionSemantics) -> str | None:
    """The action that lists what a place holds, where arriving does not (None too for
    semantics written before the protocol asked)."""
    look = getattr(semantics, "look_around", None)
    return look() if look is not None else None


def abstract(
    action: str,
    mentions: Mentions,
    *,
    place: str | None,
    slot_of_type: dict[str, str],
    literal: bool = False,
) -> tuple[str, dict[str, str]]:
    """``take potato 1 from countertop 1`` -> ``take {object} from {@}``.

    The current place becomes ``{@}``, instances of a slot's type become the slot,
    others their type in angle brackets (or stay literal when ``literal``). Also
    returns slot -> instance for the slots it filled.
    """
    text = normalize(action)
    out, last, used = [], 0, {}
    for s, e, name in mentions.find(text):
        out.append(text[last:s])
        etype = mentions.type_of(name)
        # a slot bound to this very name (a value read during the episode) before its type
        key = name if name in slot_of_type else _named_by(name, slot_of_type) or etype
        if name == place:
            out.append("{@}")
        elif key in slot_of_type:
            out.append("{" + slot_of_type[key] + "}")
            used.setdefault(slot_of_type[key], name)
        elif (part := _part_of_slot(name, mentions, slot_of_type)) is not None:
            # a part named after its whole ("cathode in red light bulb"): the whole is
            # the task's thing, the part the same in every variation
            form, slot, whole = part
            out.append(form)
            used.setdefault(slot, whole)
        else:
            out.append(name if literal else f"<{etype}>")
        last = e
    out.append(text[last:])
    return "".join(out), used


def _named_by(name: str, slot_of_type: dict[str, str]) -> str | None:
    """The slot value that names ``name`` with a qualifier in front (the task's
    "electric buzzer" for the environment's "buzzer"); where the environment uses the
    full name, the longer mention matches first and this is never asked."""
    tail = " " + name
    return next((v for v in slot_of_type if v.endswith(tail)), None)


def _part_of_slot(
    name: str, mentions: Mentions, slot_of_type: dict[str, str]
) -> tuple[str, str, str] | None:
    """``cathode in red light bulb`` -> (``cathode in {object}``, object, red light bulb)
    where a slot's instance ends the name after a linking word; else None."""
    m = re.fullmatch(r"(.+? (?:in|on|of) )(.+)", name)
    if m is None or not slot_of_type:
        return None
    whole = m.group(2)
    key = whole if whole in slot_of_type else mentions.type_of(whole)
    if whole not in mentions.names or key not in slot_of_type:
        return None
    return m.group(1) + "{" + slot_of_type[key] + "}", slot_of_type[key], whole


def matches(concrete_abs: str, step_abs: str) -> bool:
    """Whether an abstracted action is an instance of a step's action template."""
    if concrete_abs == step_abs:
        return True
    if "<*>" not in step_abs:
        return False
    # a wildcard stands for any typed instance or, where the environment names
    # things it does not list as seen, any words
    rx = re.escape(step_abs).replace(re.escape("<*>"), r"(?:<[^>]*>|[^{}<>]+?)")
    return re.fullmatch(rx, concrete_abs) is not None


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def find_run(seq: Sequence[str], run: Sequence[str]) -> int:
    """Index of the first occurrence of ``run`` in ``seq`` (-1 when absent)."""
    n = len(run)
    for i in range(len(seq) - n + 1):
        if list(seq[i : i + n]) == list(run):
            return i
    return -1


def read_span(
    abs_action: str,
    readings: Sequence[tuple[str, list[str]]],
    known: frozenset[str] | set[str] = frozenset(),
) -> tuple[int, int, int, int] | None:
    """The words of an action that only an earlier reading revealed.

    Returns (first piece, end piece, reading index, word index in that reading) of the
    longest run of literal words (not the verb, not only filler) that occurs in the
    observation of a step that read something, latest reading first. Entities the
    environment lists as present are abstracted already; what is left literal and
    appears in a recipe or a note is a value the task depends on but does not name.
    Words in ``known`` (the task's own) are never read values.
    """
    pieces = PIECE.findall(abs_action)
    best: tuple[int, int, int, int] | None = None
    for i in range(1, len(pieces)):
        for j in range(len(pieces), i, -1):
            run = pieces[i:j]
            if best is not None and j - i <= best[1] - best[0]:
                break
            if any(p.startswith(("{", "<")) for p in run) or all(p in FILLER for p in run):
                continue
            ws = [w for p in run for w in words(p)]
            if not ws or all(w in FILLER or w in known for w in ws):
                continue
            for r in range(len(readings) - 1, -1, -1):
                at = find_run(readings[r][1], ws)
                if at >= 0:
                    best = (i, j, r, at)
                    break
    return best


def read_value(observation: str, before: Sequence[str], after: Sequence[str]) -> str | None:
    """The words of ``observation`` between the learned contexts (at most 5 words)."""
    return next(read_values(observation, before, after), None)


def read_values(observation: str, before: Sequence[str], after: Sequence[str]) -> Iterator[str]:
    """Every run of words of ``observation`` between the learned contexts, in order."""
    ws = words(observation)
    if not before:
        return
    at = 0
    while (found := find_run(ws[at:], before)) >= 0:
        start = at + found + len(before)
        end = min(len(ws), start + 5)
        if after:
            stop = find_run(ws[start : end + 1], after)
            if stop > 0:
                end = start + stop
        if start < end:
            yield " ".join(ws[start:end])
        at = start


def verb(action: str) -> str:
    pieces = PIECE.findall(action)
    return pieces[0] if pieces else ""


def slots_in(text: str) -> set[str]:
    return set(re.findall(r"\{[^}]*\}", text))


def same_entities(concrete_abs: str, step_abs: str) -> bool:
    """Whether an abstracted action names the typed things a step template names."""
    # "pick up <cupboard>" is not a rewording of "pick up <thermometer>"; where a slot
    # names what is acted on, the other things may differ (take {object} from <counter>).
    # {@} is only the place the skill stands: "take <fork> from {@}" still names a fork.
    if slots_in(step_abs) - {"{@}"}:
        return True
    want = Counter(t for t in re.findall(r"<[^>]*>", step_abs) if t != "<*>")
    if want - Counter(re.findall(r"<[^>]*>", concrete_abs)):
        return False
    # and in the same role: "pour <pot> into <hallway>" names a pot, but as what is
    # poured, where "pour jug into <pot>" pours into it
    a, b = PIECE.findall(step_abs), PIECE.findall(concrete_abs)
    aligned = {
        i
        for m in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
        for i in range(m.a, m.a + m.size)
    }
    return all(i in aligned for i, t in enumerate(a) if t.startswith("<") and t != "<*>")


def similarity(a: str, b: str) -> float:
    """Token overlap of two action forms, over the longer one (0..1)."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    if not ta or not tb:
        return 0.0
    ca, cb = Counter(ta), Counter(tb)
    return sum((ca & cb).values()) / max(len(ta), len(tb))


# -- which template words name the task (not its entities) ----------------------------

_SLOT_RX = re.compile(r"\{[^}]*\}")


def key_words(key: str) -> list[str]:
    """A template's literal words in order, each slot as ``{}`` (slot names differ)."""
    return _TOKEN.findall(_SLOT_RX.sub("{}", normalize(key)))


def differing_words(a: Sequence[str], b: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """The words ``a`` has where ``b`` has others, when the two differ in one place only
    (``(["heat"], ["cool"])``, ``([], ["two"])``); None when they differ in several."""
    ops = [o for o in SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if o[0] != "equal"]
    if len(ops) != 1:
        return None
    _, i1, i2, j1, j2 = ops[0]
    return list(a[i1:i2]), list(b[j1:j2])


def distinguishing_words(keys: Iterable[str]) -> set[str]:
    """The words that tell stored templates apart, learned from the templates alone.

    A word is distinguishing when it is the one word by which two templates differ
    (a minimal pair: "heat some {} and ..." / "clean some {} and ...", "put a hot {}
    in {}" / "put a {} in {}") or when only one template has it ("look", "under").
    Filler words never are.
    """
    seqs = {tuple(key_words(k)) for k in keys}
    out: set[str] = set()
    df = Counter(w for s in seqs for w in set(s))
    out |= {w for w, n in df.items() if n == 1}
    for a in seqs:
        for b in seqs:
            if a >= b:
                continue
            change = differing_words(a, b)
            if change is not None and len(change[0]) <= 1 and len(change[1]) <= 1:
                out |= {*change[0], *change[1]}
    return {w for w in out if not w.startswith("{") and w not in FILLER}


def template_conflict(
    task_key: str, key: str, keys: Iterable[str], distinct: set[str] | None = None
) -> str | None:
    """Why the (masked) task ``task_key`` is not the template ``key``, or None if it may be.

    The template's distinguishing words must all be in the task, and the task's words
    that distinguish templates, or that no stored template has at all ("cool" with no
    cooling template stored, "two"), must all be in the template.
    """
    keys = list(dict.fromkeys([*keys, key]))
    distinct = distinguishing_words(keys) if distinct is None else distinct
    vocab = {w for k in keys for w in key_words(k)}
    task = {w for w in key_words(task_key) if not w.startswith("{") and w not in FILLER}
    have = set(key_words(key))
    missing = sorted(w for w in have & distinct if w not in task)
    extra = sorted(w for w in task if w not in have and (w in distinct or w not in vocab))
    if not missing and not extra:
        return None
    parts = []
    if extra:
        parts.append("the task says " + ", ".join(repr(w) for w in extra))
    if missing:
        parts.append("the template says " + ", ".join(repr(w) for w in missing))
    return " and ".join(parts) + " (distinguishing words differ)"
