"""Executable procedures: procedural memory that runs as a skill.

Same-template trajectories compile into a parametrized program: the task's entities
become slots (``{object}``, ``{target}``), navigation and no-op steps drop out, places
that vary across trajectories become search steps (``find {object}``), constant ones
are kept. A new task's slots are bound by aligning its text with the template. The
program then runs with a step pointer that advances when the environment confirms a
step; searches are ordered by where each entity type was found in past trajectories;
admissible actions are ranked against the current step. The LLM is called only where
the skill does not reach (binding that alignment cannot do, ties, a step that keeps
failing, a task with no procedure), and every hand-over is recorded on the steps.

Everything the mechanisms know about an environment comes through
:class:`memp.envs.base.ActionSemantics`; nothing here names an environment.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

from memp.errors import InvalidInput
from memp.template import (
    KeyMatch,
    align,
    fill,
    mask,
    match_key,
    normalize,
    rank_keys,
    slots_of,
)
from memp.types import Procedure, Step, Trajectory

if TYPE_CHECKING:
    from memp.embed.base import Embedder
    from memp.envs.base import ActionSemantics, Env
    from memp.llm.base import LLM, Message

PROGRAM_VERSION = 1
_LLM_CHOICES = 80  # actions offered to the LLM when it acts for the skill
_TOKEN = re.compile(r"\{[^}]*\}|<[^>]*>|[a-z0-9]+")


@dataclass
class ExecConfig:
    """Switches for every mechanism (so a runner can ablate each one) and budgets."""

    compile: bool = True  # off: replay the nearest trajectory literally (slots substituted)
    bind_align: bool = True  # bind slots by aligning the task with the template
    bind_llm: bool = True  # the LLM fills slots when alignment cannot
    template_retrieval: bool = True  # off: retrieve on the raw task text
    priors: bool = True  # order searches by where things were found before
    embed_priors: bool = True  # unseen entity types borrow priors from similar ones
    confirm: bool = True  # advance only when the environment confirms the step
    rank: bool = True  # off: only exact matches of the step ground to an action
    llm_tiebreak: bool = True
    llm_recovery: bool = True
    llm_fallback: bool = True  # ReAct with prompt memory when no procedure matches
    approximate_keys: bool = False  # accept a template that only resembles the task
    compile_k: int = 3  # how many same-template trajectories compile into one program
    max_steps: int = 50
    recover_after: int = 3  # consecutive failures of a step before the LLM is asked
    recovery_steps: int = 3  # actions the LLM takes before handing back
    # environment steps on one program step before the LLM is asked (below max_steps,
    # so a stuck search reaches recovery with the shipped defaults)
    stall_after: int = 12
    # a program that ran to its end without success runs once more from its first step,
    # with what the episode learned (where things are): a step done too early (the lamp
    # switched on before the object was in hand) is done again in its place
    retry: bool = True
    rank_threshold: float = 0.6

    @classmethod
    def no_llm(cls, **overrides: Any) -> ExecConfig:
        base = dict(bind_llm=False, llm_tiebreak=False, llm_recovery=False, llm_fallback=False)
        base.update(overrides)
        return cls(**base)


# ---------------------------------------------------------------------------
# mentions: which known instances an action or observation names


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

    def observe(self, action: str, observation: str) -> list[str]:
        seen = [normalize(s) for s in self.semantics.seen_objects(observation)]
        self.add(seen)
        self.add([self.semantics.location(action)])
        return seen


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
        key = name if name in slot_of_type else etype
        if name == place:
            out.append("{@}")
        elif key in slot_of_type:
            out.append("{" + slot_of_type[key] + "}")
            used.setdefault(slot_of_type[key], name)
        else:
            out.append(name if literal else f"<{etype}>")
        last = e
    out.append(text[last:])
    return "".join(out), used


def _wild(action: str) -> str:
    return re.sub(r"<[^>]*>", "<*>", action)


def _matches(concrete_abs: str, step_abs: str) -> bool:
    if concrete_abs == step_abs:
        return True
    if "<*>" not in step_abs:
        return False
    # a wildcard stands for any typed instance or, where the environment names
    # things it does not list as seen, any words
    rx = re.escape(step_abs).replace(re.escape("<*>"), r"(?:<[^>]*>|[^{}<>]+?)")
    return re.fullmatch(rx, concrete_abs) is not None


_PIECE = re.compile(r"\{[^}]*\}|<[^>]*>|\S+")


def _generalize(actions: Sequence[str]) -> str:
    """One action template for the same step across trajectories: differing pieces become <*>."""
    base = _PIECE.findall(actions[0])
    for other in actions[1:]:
        pieces = _PIECE.findall(other)
        out: list[str] = []
        for tag, i1, i2, _, _ in SequenceMatcher(None, base, pieces, autojunk=False).get_opcodes():
            if tag == "equal":
                out.extend(base[i1:i2])
            elif not out or out[-1] != "<*>":
                out.append("<*>")
        base = out
    return " ".join(base)


_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_FILLER = frozenset({"a", "an", "the", "some", "from", "in", "into", "on", "to", "with", "of", "at"})
READ_PREFIX = "read"  # slots bound from what a step reads, not from the task: read1, read2 ...


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _find_run(words: Sequence[str], run: Sequence[str]) -> int:
    n = len(run)
    for i in range(len(words) - n + 1):
        if list(words[i : i + n]) == list(run):
            return i
    return -1


def _read_value(
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
    pieces = _PIECE.findall(abs_action)
    best: tuple[int, int, int, int] | None = None
    for i in range(1, len(pieces)):
        for j in range(len(pieces), i, -1):
            run = pieces[i:j]
            if best is not None and j - i <= best[1] - best[0]:
                break
            if any(p.startswith(("{", "<")) for p in run) or all(p in _FILLER for p in run):
                continue
            words = [w for p in run for w in _words(p)]
            if not words or all(w in _FILLER or w in known for w in words):
                continue
            for r in range(len(readings) - 1, -1, -1):
                at = _find_run(readings[r][1], words)
                if at >= 0:
                    best = (i, j, r, at)
                    break
    return best


def read_value(observation: str, before: Sequence[str], after: Sequence[str]) -> str | None:
    """The words of ``observation`` between the learned contexts (at most 5 words)."""
    words = _words(observation)
    if not before:
        return None
    start = _find_run(words, before)
    if start < 0:
        return None
    start += len(before)
    end = min(len(words), start + 5)
    if after:
        stop = _find_run(words[start:end + 1], after)
        if stop > 0:
            end = start + stop
    return " ".join(words[start:end]) or None


def _verb(action: str) -> str:
    pieces = _PIECE.findall(action)
    return pieces[0] if pieces else ""


def _slots_in(text: str) -> set[str]:
    return set(re.findall(r"\{[^}]*\}", text))


def _same_entities(concrete_abs: str, step_abs: str) -> bool:
    # "pick up <cupboard>" is not a rewording of "pick up <thermometer>"; where a slot
    # names what is acted on, the other things may differ (take {object} from <counter>)
    if _slots_in(step_abs):
        return True
    want = Counter(t for t in re.findall(r"<[^>]*>", step_abs) if t != "<*>")
    return not (want - Counter(re.findall(r"<[^>]*>", concrete_abs)))


def _similarity(a: str, b: str) -> float:
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    if not ta or not tb:
        return 0.0
    ca, cb = Counter(ta), Counter(tb)
    return sum((ca & cb).values()) / max(len(ta), len(tb))


# ---------------------------------------------------------------------------
# search priors: where each entity type was seen, by place type


@dataclass
class Priors:
    """Counts of entity type seen at place type, and how often a place needed revealing."""

    found: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    visits: Counter[str] = field(default_factory=Counter)
    reveals: Counter[str] = field(default_factory=Counter)
    reveal_templates: set[str] = field(default_factory=set)
    embedder: Embedder | None = None
    _similar: dict[str, list[tuple[str, float]]] = field(default_factory=dict, repr=False)

    def observe(self, trajectory: Trajectory, semantics: ActionSemantics) -> None:
        mentions = Mentions(semantics)
        place: str | None = None
        for step in trajectory.steps:
            a, o = step.action, step.observation
            if semantics.is_navigation(a):
                loc = semantics.location(a)
                place = normalize(loc) if loc else None
                if place:
                    self.visits[mentions.type_of(place)] += 1
            elif semantics.failed(a, o) or semantics.is_noop(a):
                continue
            seen = mentions.observe(a, o)
            if place is None:
                continue
            ptype = mentions.type_of(place)
            if (
                seen
                and not semantics.is_navigation(a)
                and normalize(semantics.location(a) or "") == place
            ):
                self.reveals[ptype] += 1
            for name in seen:
                if name != place:
                    self.found[mentions.type_of(name)][ptype] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": {k: dict(v) for k, v in self.found.items()},
            "visits": dict(self.visits),
            "reveals": dict(self.reveals),
        }

    def merge(self, data: dict[str, Any]) -> None:
        for etype, places in data.get("found", {}).items():
            self.found[etype].update(places)
        self.visits.update(data.get("visits", {}))
        self.reveals.update(data.get("reveals", {}))
        self._similar.clear()

    def _neighbours(self, etype: str) -> list[tuple[str, float]]:
        # An unseen type borrows the distributions of the most similar known types.
        if etype in self._similar:
            return self._similar[etype]
        out: list[tuple[str, float]] = []
        known = sorted(self.found)
        if self.embedder is not None and known:
            vecs = self.embedder.embed([etype, *known])
            sims = vecs[1:] @ vecs[0]
            order = sorted(range(len(known)), key=lambda i: -float(sims[i]))[:3]
            out = [(known[i], float(sims[i])) for i in order if sims[i] > 0.3]
        self._similar[etype] = out
        return out

    def score(self, etype: str, ptype: str) -> float:
        """How promising a place type is for an entity type (higher is better)."""
        # where things in general were found (not where the expert happened to walk)
        held = sum(d.get(ptype, 0) for d in self.found.values())
        base = (held + 1) / (sum(sum(d.values()) for d in self.found.values()) + 1)
        dists = [(etype, 1.0)] if etype in self.found else self._neighbours(etype)
        p = wsum = 0.0
        for t, w in dists:
            total = sum(self.found[t].values())
            if total:
                p += w * self.found[t].get(ptype, 0) / total
                wsum += w
        # the small base term orders places never seen holding anything
        return (p / wsum if wsum else 0.0) + 0.05 * base

    def cost(self, ptype: str) -> float:
        visits = self.visits.get(ptype, 0)
        return 1.0 + (self.reveals.get(ptype, 0) / visits if visits else 0.5)


# ---------------------------------------------------------------------------
# compilation


def trajectory_entities(trajectory: Trajectory, semantics: ActionSemantics) -> list[str]:
    """Entity types the trajectory saw or acted on (what a task's words are matched against)."""
    mentions = Mentions(semantics)
    for step in trajectory.steps:
        mentions.observe(step.action, step.observation)
    first_obs = trajectory.metadata.get("initial_observation")
    if isinstance(first_obs, str):
        mentions.observe("", first_obs)
    return sorted({mentions.type_of(n) for n in mentions.names} | mentions.names)


def task_template(trajectory: Trajectory, semantics: ActionSemantics) -> tuple[str, dict[str, str]]:
    """The task of ``trajectory`` with the entities it touched masked."""
    return mask(trajectory.task, trajectory_entities(trajectory, semantics))


def _trajectory_program(
    trajectory: Trajectory,
    semantics: ActionSemantics,
    binding: dict[str, str],
    *,
    literal: bool = False,
) -> tuple[list[dict[str, Any]], set[str]]:
    """One trajectory as abstract steps (+ the reveal templates it used)."""
    mentions = Mentions(semantics)
    first_obs = trajectory.metadata.get("initial_observation")
    if isinstance(first_obs, str):
        mentions.observe("", first_obs)
    # the task's own values are names, as at run time (see SkillAgent.run)
    mentions.add([v for v in binding.values() if v])
    slot_of_type = {normalize(v): k for k, v in binding.items()}
    place: str | None = None
    first_seen: dict[str, str | None] = {}
    acted_on: set[str] = set()
    steps: list[dict[str, Any]] = []
    reveal: set[str] = set()
    readings: list[tuple[str, list[str]]] = []  # (action, observation words) of reading steps
    read_slots: dict[str, str] = {}  # value -> read slot
    task_words = set(_words(trajectory.task))
    for step in trajectory.steps:
        a, o = step.action, step.observation
        nav = semantics.is_navigation(a)
        if nav:
            loc = semantics.location(a)
            place = normalize(loc) if loc else None
        if not nav and semantics.is_noop(a) and not semantics.failed(a, o) and not literal:
            readings.append((normalize(a), _words(o)))
            continue
        if not nav and (semantics.is_noop(a) or semantics.failed(a, o)):
            continue
        before = set(first_seen)
        for name in mentions.observe(a, o):
            first_seen.setdefault(name, place)
        if nav and not literal:
            continue
        abs_a, used = abstract(a, mentions, place=place, slot_of_type=slot_of_type, literal=literal)
        if not literal and not nav and readings:
            abs_a = _with_read_slot(abs_a, readings, read_slots, steps, place, task_words)
        if literal:
            steps.append({"op": "act", "action": abs_a, "at": None, "inst": used})
            continue
        named = [n for _, _, n in mentions.find(normalize(a))]
        if named and all(n == place for n in named) and set(first_seen) - before:
            reveal.add(abs_a)  # opening a container: part of looking, not of the task
            continue
        at: str | None
        # picked up where it was found: the place is wherever the search finds it
        found_here = [
            s
            for s, inst in used.items()
            if inst != place and first_seen.get(inst) == place and inst not in acted_on
        ]
        acted_on.update(used.values())
        if place is None:
            at = None
        elif found_here:
            at = "@" + found_here[0]
        elif mentions.type_of(place) in slot_of_type:
            at = "{" + slot_of_type[mentions.type_of(place)] + "}"
        else:
            at = f"<{mentions.type_of(place)}>"
        steps.append({"op": "act", "action": abs_a, "at": at, "inst": used})
    return steps, reveal


def _with_read_slot(
    abs_a: str,
    readings: Sequence[tuple[str, list[str]]],
    read_slots: dict[str, str],
    steps: list[dict[str, Any]],
    place: str | None,
    known: set[str],
) -> str:
    """Replace a value an earlier reading revealed by a read slot, adding the read step."""
    found = _read_value(abs_a, readings, known)
    if found is None:
        return abs_a
    i, j, r, at = found
    pieces = _PIECE.findall(abs_a)
    value = " ".join(w for p in pieces[i:j] for w in _words(p))
    slot = read_slots.get(value)
    if slot is None:
        slot = read_slots[value] = f"{READ_PREFIX}{len(read_slots) + 1}"
        action, words = readings[r]
        n = len(value.split())
        steps.append(
            {
                "op": "read",
                "action": action,
                "slot": slot,
                "at": None if place is None else "*",
                # the words around the value: how to find it in a new episode's reading
                "before": words[max(0, at - 2) : at],
                "after": words[at + n : at + n + 1],
            }
        )
    return " ".join([*pieces[:i], "{" + slot + "}", *pieces[j:]])


def _with_finds(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for st in steps:
        at = st.get("at")
        if st["op"] == "act" and isinstance(at, str) and at.startswith("@"):
            prev = out[-1] if out else None
            if not (prev and (prev.get("at") == at or prev.get("what") == at[1:])):
                out.append({"op": "find", "what": at[1:]})
        out.append(st)
    return out


def _mark_distinct(steps: list[dict[str, Any]]) -> None:
    # A step repeated on a different instance (take the second cellphone) must not
    # pick the instance an earlier copy of the step used.
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for st in steps:
        if st["op"] != "act":
            continue
        prior = seen[st["action"]]
        distinct = [
            s for s, inst in st.get("inst", {}).items() if prior.get(s) and inst not in prior[s]
        ]
        if distinct:
            st["distinct"] = distinct
        for s, inst in st.get("inst", {}).items():
            prior[s].add(inst)


def compile_program(
    trajectories: Sequence[Trajectory],
    semantics: ActionSemantics,
    *,
    key: str | None = None,
    generalize: bool = True,
) -> dict[str, Any]:
    """Compile same-template trajectories into one parametrized program (a dict).

    ``generalize=False`` keeps the first trajectory as it is (navigation included,
    places literal): the no-compilation baseline.
    """
    if not trajectories:
        raise InvalidInput("compile_program needs at least one trajectory of the task template")
    per: list[tuple[list[dict[str, Any]], set[str]]] = []
    keys: list[str] = []
    for traj in trajectories if generalize else trajectories[:1]:
        k, binding = task_template(traj, semantics)
        if key is not None:
            b = align(traj.task, key)
            if b is not None:
                k, binding = key, b
        keys.append(k)
        steps, reveal = _trajectory_program(traj, semantics, binding, literal=not generalize)
        _mark_distinct(steps)
        per.append((_with_finds(steps) if generalize else steps, reveal))
    key = key or Counter(keys).most_common(1)[0][0]
    # the most common step skeleton (ops and verbs) wins; places that differ among
    # its members become searches, arguments that differ become wildcards
    skel = [
        tuple((s["op"], _verb(s.get("action", "")), s.get("what") or s.get("slot")) for s in steps)
        for steps, _ in per
    ]
    counts = Counter(skel)
    best = max(counts, key=lambda s: (counts[s], -len(s)))
    members = [per[i][0] for i, s in enumerate(skel) if s == best]
    merged: list[dict[str, Any]] = []
    for pos in range(len(best)):
        column = [m[pos] for m in members]
        st = {k: v for k, v in column[0].items() if k != "inst"}
        if st["op"] == "act":
            actions = list(dict.fromkeys(c["action"] for c in column))
            if len(actions) > 1:
                st["action"] = _generalize(actions)
            ats = {c.get("at") for c in column}
            if len(ats) > 1:
                st["at"] = "*"
            distinct = sorted({d for c in column for d in c.get("distinct", [])})
            if distinct:
                st["distinct"] = distinct
        elif st["op"] == "read":
            # the most common wording and context across trajectories
            for k in ("action", "before", "after"):
                vals = Counter(tuple(c[k]) if isinstance(c[k], list) else c[k] for c in column)
                best_v = vals.most_common(1)[0][0]
                st[k] = list(best_v) if isinstance(best_v, tuple) else best_v
        merged.append(st)
    reveal = sorted(set().union(*(r for _, r in per)))
    return {
        "version": PROGRAM_VERSION,
        "key": key,
        "slots": slots_of(key),
        "steps": merged,
        "reveal": reveal,
        "generalized": generalize,
        "sources": [t.id for t in trajectories[: len(per)]],
    }


def describe(program: dict[str, Any], binding: dict[str, str] | None = None) -> str:
    """The program as numbered lines (for prompts and for people)."""
    lines = []
    for i, st in enumerate(program.get("steps", []), 1):
        if st["op"] == "find":
            text = "find {" + st["what"] + "}"
        elif st["op"] == "read":
            text = f"{st['action']}  (note the {{{st['slot']}}})"
        else:
            text = st["action"].replace("{@}", "it")
            at = st.get("at")
            if isinstance(at, str) and at.startswith(("{", "<")):
                text += f"  (at {at})"
        lines.append(f"{i}. {fill(text, binding or {})}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# memory building


def build_skill_memory(
    memory: Any,
    trajectories: Iterable[Trajectory],
    semantics: ActionSemantics,
    *,
    env: Env | None = None,
    distill: bool = True,
    compile_k: int = 3,
    progress: bool = False,
) -> list[Procedure]:
    """Distill expert trajectories and store them as procedures with a program.

    Each procedure carries its task template as ``task_key``, the distilled
    trajectory, the program compiled from it and up to ``compile_k - 1`` earlier
    same-template trajectories, and the search priors learned from the full
    (undistilled) trajectory in ``program["priors"]``. Only successful trajectories
    are stored; with ``env`` given, distilled ones are re-verified by replay.
    """
    from memp.distill import distilled

    trajectories = list(trajectories)
    by_key: dict[str, list[Trajectory]] = defaultdict(list)
    stored: list[Procedure] = []
    iterator: Iterable[Trajectory] = trajectories
    if progress:
        from rich.progress import track

        iterator = track(trajectories, description="building skills")
    for raw in iterator:
        if not raw.success:
            continue
        priors = Priors()
        priors.observe(raw, semantics)
        traj = distilled(raw, semantics, env=env) if distill else raw
        key, _ = task_template(raw, semantics)
        same = by_key[key]
        same.insert(0, traj)
        program = compile_program(same[:compile_k], semantics, key=key)
        program["priors"] = priors.to_dict()
        proc = Procedure(
            task=raw.task,
            task_key=key,
            environment=raw.environment,
            build="trajectory",
            trajectory=traj,
            program=program,
            source_trajectory_id=raw.id,
            source_model=raw.model,
            metadata={"distilled": distill, "raw_steps": len(raw.steps), "steps": len(traj.steps)},
        )
        stored.append(memory.add_procedure(proc))
    return stored


# ---------------------------------------------------------------------------
# the policy


@dataclass
class _Run:
    """Everything the skill tracks during one episode."""

    binding: dict[str, str]
    program: dict[str, Any]
    mentions: Mentions
    ptr: int = 0
    place: str | None = None
    last_obs: str = ""
    admissible: list[str] = field(default_factory=list)
    seen_at: dict[str, str | None] = field(default_factory=dict)  # instance -> place
    contents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    searched: set[str] = field(default_factory=set)
    revealed: set[str] = field(default_factory=set)
    found_place: dict[str, str | None] = field(default_factory=dict)
    tried_places: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    bad: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    used: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    fails: int = 0
    on_step: int = 0
    reveal: set[str] = field(default_factory=set)
    retried: bool = False

    @property
    def slot_of_type(self) -> dict[str, str]:
        return {normalize(v): k for k, v in self.binding.items()}

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.program["steps"]


class SkillAgent:
    """Runs compiled procedures as skills; the LLM only where they do not reach.

    ``SkillAgent(memory, llm=None, config=ExecConfig(), fallback=None).run(env, episode)``
    returns a :class:`Trajectory` like every other policy. ``fallback`` is the policy
    for tasks with no procedure of their template (a ``ReActAgent`` with prompt memory
    by default when an LLM is given).
    """

    def __init__(
        self,
        memory: Any,
        llm: LLM | None = None,
        *,
        config: ExecConfig | None = None,
        fallback: Any | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.memory = memory
        self.llm = llm
        self.config = config or ExecConfig()
        self.fallback = fallback
        self.embedder = embedder if embedder is not None else getattr(memory, "embedder", None)
        self._cache: dict[str, tuple[int, list[Procedure], Priors]] = {}

    # -- memory side ------------------------------------------------------

    def _procedures(self, environment: str) -> tuple[list[Procedure], Priors]:
        try:
            procs = list(self.memory.list(environment=environment))
        except TypeError:
            procs = [p for p in self.memory.list() if p.environment == environment]
        cached = self._cache.get(environment)
        if cached and cached[0] == len(procs):
            return cached[1], cached[2]
        priors = Priors(embedder=self.embedder if self.config.embed_priors else None)
        for p in procs:
            if p.program and isinstance(p.program.get("priors"), dict):
                priors.merge(p.program["priors"])
            if p.program:
                # how to look inside a place is a fact about the environment, not the task
                priors.reveal_templates.update(p.program.get("reveal", []))
        self._cache[environment] = (len(procs), procs, priors)
        return procs, priors

    def select(
        self, task: str, environment: str, semantics: ActionSemantics
    ) -> tuple[dict[str, Any] | None, dict[str, str] | None, list[str], dict[str, Any]]:
        """Pick and compile the program for ``task``: (program, binding, procedure ids, notes)."""
        cfg = self.config
        procs, priors = self._procedures(environment)
        procs = [p for p in procs if p.task_key and (p.trajectory is not None or p.program)]
        notes: dict[str, Any] = {}
        if not procs:
            return None, None, [], {"reason": "no procedures"}
        known = set(priors.found) | set(priors.visits)
        chosen: list[Procedure]
        binding: dict[str, str] | None
        if cfg.template_retrieval:
            m = match_key(
                task,
                [p.task_key for p in procs if p.task_key],
                known_entities=known,
                approximate=cfg.approximate_keys,
            )
            if m is None and cfg.bind_llm and self.llm is not None:
                m, tokens = self._llm_pick_key(task, procs, known)
                notes["handover_bind"] = tokens
            if m is None:
                return None, None, [], {"reason": "no template matches the task"}
            key, binding = m.key, m.binding
            notes["key_match"] = "exact" if m.exact else f"approximate {m.score:.2f}"
            chosen = [p for p in procs if p.task_key == key]
            chosen.sort(key=lambda p: (-(p.usage.success_rate or 0.0), -p.created_at.timestamp()))
        else:
            hits = self.memory.retrieve(task, k=max(cfg.compile_k, 1), environment=environment)
            if not hits:
                return None, None, [], {"reason": "nothing retrieved"}
            key = hits[0].procedure.task_key or normalize(hits[0].procedure.task)
            chosen = [h.procedure for h in hits if h.procedure.task_key == key]
            binding = None
        if not cfg.bind_align:
            binding = None
        elif binding is None:
            binding = align(task, key)
        if binding is None and cfg.bind_llm and self.llm is not None:
            binding, tokens = self._llm_bind(task, key)
            prev = notes.get("handover_bind") or {}
            notes["handover_bind"] = {k: v + prev.get(k, 0) for k, v in tokens.items()}
        if binding is None:
            # last resort: the task's own words that name known entities, by order
            _, binding = mask(task, known)
            if set(binding) != set(slots_of(key)):
                binding = {s: "" for s in slots_of(key)}
            notes["bind"] = "vocabulary"
        chosen = chosen[: max(cfg.compile_k, 1)]
        trajs = [p.trajectory for p in chosen if p.trajectory is not None]
        if trajs:
            program = compile_program(trajs, semantics, key=key, generalize=cfg.compile)
        elif chosen[0].program:
            program = dict(chosen[0].program)
        else:
            return None, None, [], {"reason": "procedure has neither trajectory nor program"}
        notes["key"] = key
        return program, binding, [p.id for p in chosen], notes

    def _llm_pick_key(
        self, task: str, procs: list[Procedure], known: set[str]
    ) -> tuple[KeyMatch | None, dict[str, int]]:
        """No stored template aligns: ask the LLM whether one means the same task."""
        assert self.llm is not None
        masked, binding = mask(task, known)
        # the closest few by wording, closest first: a short list the model can judge
        ranked = rank_keys(task, [p.task_key for p in procs if p.task_key], known_entities=known)
        keys = [k for _, k in ranked[:3]]
        if not keys or not binding:
            return None, {}
        used = {"prompt": 0, "completion": 0}
        for key in keys[:2]:
            msgs: list[Message] = [
                {"role": "system", "content": "Answer yes or no."},
                {
                    "role": "user",
                    "content": f"Task A: {masked}\nTask B: {key}\n"
                    "Do A and B ask for the same thing (same steps, only worded differently)?",
                },
            ]
            c = self.llm.complete(msgs, max_tokens=3, choices=["yes", "no"])
            used["prompt"] += c.prompt_tokens
            used["completion"] += c.completion_tokens
            if c.text.strip().lower() == "yes" and set(slots_of(key)) == set(binding):
                return KeyMatch(key, binding, 0.0, False), used
        return None, used

    def _llm_bind(self, task: str, key: str) -> tuple[dict[str, str] | None, dict[str, int]]:
        """Ask the LLM which words of the task fill each slot (answers limited to task phrases)."""
        assert self.llm is not None
        words = normalize(task).split()
        phrases = sorted(
            {" ".join(words[i : i + n]) for n in (1, 2, 3) for i in range(len(words) - n + 1)}
        )
        binding: dict[str, str] = {}
        used = {"prompt": 0, "completion": 0}
        for slot in slots_of(key):
            msgs: list[Message] = [
                {
                    "role": "system",
                    "content": "Fill the slot of a task template with words from the task.",
                },
                {
                    "role": "user",
                    "content": f"Template: {key}\nTask: {normalize(task)}\nWhich words of the task fill {{{slot}}}?",
                },
            ]
            c = self.llm.complete(msgs, max_tokens=12, choices=phrases)
            used["prompt"] += c.prompt_tokens
            used["completion"] += c.completion_tokens
            binding[slot] = normalize(c.text)
        return binding, used

    # -- the episode ------------------------------------------------------

    def run(self, env: Env, episode: int) -> Trajectory:
        cfg = self.config
        sem = env.semantics
        obs, info = env.reset(episode=episode)
        task = info.get("task") or env.task
        program, binding, used_ids, notes = self.select(task, env.name, sem)
        if program is None or binding is None:
            out = self._fallback_episode(env, episode, task, notes.get("reason", "no procedure"))
            spent = notes.get("handover_bind") or {}
            # asking the LLM for a template counts, even when none fitted
            out.prompt_tokens += spent.get("prompt", 0)
            out.completion_tokens += spent.get("completion", 0)
            return out
        _, priors = self._procedures(env.name)
        if not cfg.priors:
            priors = Priors()
        state = _Run(binding=binding, program=program, mentions=Mentions(sem))
        state.reveal = (
            set(program.get("reveal", [])) | self._procedures(env.name)[1].reveal_templates
        )
        state.mentions.observe("", obs)
        # the task's own values are names to recognise in actions ("eat meal"), even
        # where the environment never lists them as seen
        state.mentions.add([v for v in binding.values() if v])
        state.last_obs = obs
        state.admissible = list(info.get("admissible") or env.admissible_actions() or [])
        self._note_seen(state, "", obs, sem)
        traj = Trajectory(task=task, environment=env.name, model=getattr(self.llm, "name", None))
        traj.metadata.update(
            episode=episode,
            label=getattr(env, "label", env.name),
            split=getattr(env, "split", None),
            policy="skill",
            retrieved=used_ids,
            program_key=notes.get("key"),
            binding=binding,
            program_steps=len(program["steps"]),
            notes={k: v for k, v in notes.items() if k != "handover_bind"},
        )
        bind_tokens = notes.get("handover_bind")
        pending_tokens = (bind_tokens or {}).copy()
        won = bool(info.get("won"))
        llm_left = 0
        llm_reason = ""
        while not won and len(traj.steps) < cfg.max_steps:
            actor = "skill"
            step_info: dict[str, Any] = {}
            pt = ct = 0
            if llm_left == 0 and state.ptr >= len(state.steps) and cfg.retry and not state.retried:
                state.retried = True
                state.ptr = state.fails = state.on_step = 0
                state.tried_places.clear()
                state.bad.clear()
            if llm_left == 0 and state.ptr >= len(state.steps):
                if not (cfg.llm_recovery and self.llm is not None):
                    traj.metadata["stop"] = "program finished without success"
                    break
                llm_left, llm_reason = cfg.max_steps, "program finished without success"
            action: str | None = None
            if llm_left == 0:
                action, why, tb = self._decide(state, sem, priors)
                step_info.update(why)
                pt, ct = tb
                if (
                    action is None
                    or state.fails >= cfg.recover_after
                    or state.on_step >= cfg.stall_after
                ):
                    reason = why.get("stuck") or (
                        "step keeps failing" if state.fails >= cfg.recover_after else "stalled"
                    )
                    if cfg.llm_recovery and self.llm is not None:
                        llm_left, llm_reason = cfg.recovery_steps, reason
                        action = None
                    elif action is None:
                        # no LLM and nothing left to try: skip to the rest of the program
                        state.ptr += 1
                        state.fails = state.on_step = 0
                        if state.ptr >= len(state.steps):
                            traj.metadata["stop"] = f"skill stuck: {reason}"
                            break
                        continue
            if llm_left > 0:
                first = not traj.steps or traj.steps[-1].actor != "llm"
                action, pt2, ct2 = self._llm_act(state, task, traj)
                pt, ct = pt + pt2, ct + ct2
                actor = "llm"
                step_info = {"handover": llm_reason} if first else {"llm": llm_reason}
                llm_left -= 1
                if llm_left == 0 and state.ptr < len(state.steps):
                    state.fails = state.on_step = 0
            assert action is not None
            obs, reward, terminated, truncated, info = env.step(action)
            won = bool(info.get("won"))
            if actor == "skill" and traj.steps and traj.steps[-1].actor == "llm":
                step_info["handover"] = "resume skill"
            if pending_tokens:
                pt += pending_tokens.get("prompt", 0)
                ct += pending_tokens.get("completion", 0)
                step_info["bind_by"] = "llm"
                pending_tokens = {}
            traj.steps.append(
                Step(
                    action=action,
                    observation=obs,
                    reward=float(reward),
                    actor=actor,  # type: ignore[arg-type]
                    prompt_tokens=pt,
                    completion_tokens=ct,
                    info=step_info,
                )
            )
            self._after(state, action, obs, info, env, sem, step_info)
            traj.steps[-1].info.update(step_info)  # what the step read, recorded on it
            if terminated or truncated:
                break
        traj.success = won
        traj.reward = float(info.get("score", 0.0) or 0.0)
        traj.metadata["pointer"] = state.ptr
        traj.prompt_tokens = sum(s.prompt_tokens for s in traj.steps)
        traj.completion_tokens = sum(s.completion_tokens for s in traj.steps)
        return traj

    def _fallback_episode(self, env: Env, episode: int, task: str, reason: str) -> Trajectory:
        cfg = self.config
        agent = self.fallback
        if agent is None and cfg.llm_fallback and self.llm is not None:
            from memp.agent import ReActAgent

            agent = ReActAgent(self.llm, memory=self.memory, max_steps=cfg.max_steps)
        if agent is None or not cfg.llm_fallback:
            traj = Trajectory(task=task, environment=env.name, success=False)
            traj.metadata.update(
                episode=episode, policy="skill", retrieved=[], stop=f"no skill: {reason}"
            )
            return traj
        traj = agent.run(env, episode)
        for s in traj.steps:
            s.actor = s.actor or "llm"
        if traj.steps:
            traj.steps[0].info["handover"] = f"no skill: {reason}"
        traj.metadata["policy"] = "skill->fallback"
        traj.metadata["handover"] = reason
        return traj

    # -- grounding ------------------------------------------------------

    def _abstract(
        self, state: _Run, action: str, literal: bool = False
    ) -> tuple[str, dict[str, str]]:
        return abstract(
            action,
            state.mentions,
            place=state.place,
            slot_of_type=state.slot_of_type,
            literal=literal,
        )

    def _ground(self, state: _Run, idx: int, *, anywhere: bool = False) -> list[tuple[float, str]]:
        """Admissible actions that carry out program step ``idx`` here, best first.

        ``anywhere``: skip the check that this is the step's place (a search asks
        whether the step could be done where it stands).
        """
        if idx >= len(state.steps) or state.steps[idx]["op"] not in ("act", "read"):
            return []
        st = state.steps[idx]
        if st["op"] == "read":
            return self._ground_read(state, st)
        literal = not state.program.get("generalized", True)
        if not anywhere and "{@}" in st["action"] and not self._at_place(state, st.get("at")):
            return []  # the step acts on a place: it must be the right one
        # a value that was to be read but could not be stands for anything
        pattern = re.sub(
            r"\{(" + READ_PREFIX + r"\d+)\}",
            lambda m: m.group(0) if state.binding.get(m.group(1)) else "<*>",
            st["action"],
        )
        out: list[tuple[float, str]] = []
        for a in state.admissible:
            if a in state.bad[idx]:
                continue
            abs_a, used = self._abstract(state, a, literal)
            if any(used.get(s) in state.used[(st["action"], s)] for s in st.get("distinct", [])):
                continue
            if _matches(abs_a, pattern):
                out.append((1.0, a))
            elif (
                self.config.rank
                and _slots_in(abs_a) == _slots_in(pattern)
                and _same_entities(abs_a, pattern)
            ):
                # ranked, inexact: same slots, place and things, wording may differ
                sim = _similarity(abs_a, pattern)
                if sim >= self.config.rank_threshold:
                    out.append((sim, a))
        out.sort(key=lambda x: (-x[0], x[1]))
        return out

    def _ground_read(self, state: _Run, st: dict[str, Any]) -> list[tuple[float, str]]:
        # what is read is the same thing in every episode (the cookbook, the recipe)
        out = []
        for a in state.admissible:
            if a in state.bad[state.ptr]:
                continue
            sim = 1.0 if normalize(a) == st["action"] else _similarity(normalize(a), st["action"])
            if sim >= (self.config.rank_threshold if self.config.rank else 1.0):
                out.append((sim, a))
        out.sort(key=lambda x: (-x[0], x[1]))
        return out

    def _choose(
        self, state: _Run, cands: list[tuple[float, str]]
    ) -> tuple[str, dict[str, Any], tuple[int, int]]:
        top = cands[0][0]
        best = [a for s, a in cands if s == top]
        # candidates that read the same once instances are abstracted (apple 1 / apple 2)
        # are interchangeable: only genuinely different actions are worth a question
        forms = {self._abstract(state, a)[0] for a in best}
        if len(forms) > 1 and self.config.llm_tiebreak and self.llm is not None:
            step = state.steps[state.ptr]
            msgs: list[Message] = [
                {"role": "system", "content": "Pick the action that best carries out the step."},
                {
                    "role": "user",
                    "content": f"Step: {fill(step['action'], state.binding)}\n"
                    f"Last observation: {state.last_obs[-400:]}\nActions:\n" + "\n".join(best),
                },
            ]
            c = self.llm.complete(msgs, max_tokens=24, choices=best)
            pick = c.text if c.text in best else best[0]
            return (
                pick,
                {"tiebreak": "llm", "handover": "tie between candidates"},
                (c.prompt_tokens, c.completion_tokens),
            )
        return best[0], {}, (0, 0)

    # -- deciding the next action ------------------------------------------

    def _decide(
        self, state: _Run, sem: ActionSemantics, priors: Priors
    ) -> tuple[str | None, dict[str, Any], tuple[int, int]]:
        for _ in range(len(state.steps) + 2):  # a few pointer moves without acting
            if state.ptr >= len(state.steps):
                return None, {"stuck": "program finished without success"}, (0, 0)
            st = state.steps[state.ptr]
            info: dict[str, Any] = {"step": state.ptr}
            if st["op"] == "find":
                nxt = state.ptr + 1
                if self._ground(state, nxt, anywhere=True):
                    state.found_place[st["what"]] = state.place
                    state.ptr, state.fails, state.on_step = nxt, 0, 0
                    continue
                act = self._reveal(state, sem) or self._search(state, st["what"], priors, sem)
                if act is None:
                    return (
                        None,
                        {**info, "stuck": f"nothing left to search for {{{st['what']}}}"},
                        (0, 0),
                    )
                return act, {**info, "op": "find"}, (0, 0)
            cands = self._ground(state, state.ptr)
            if st["op"] == "read":
                if cands:
                    return cands[0][1], {**info, "op": "read"}, (0, 0)
                # nothing to read here: the later steps take any value in its place
                state.ptr, state.fails, state.on_step = state.ptr + 1, 0, 0
                continue
            if cands:
                action, extra, tokens = self._choose(state, cands)
                return action, {**info, "op": "act", **extra}, tokens
            at = st.get("at")
            if self._at_place(state, at):
                act = self._reveal(state, sem)
                if act is not None:
                    return act, {**info, "op": "reveal"}, (0, 0)
                if self._ground(state, state.ptr + 1):
                    # the next step can already be done: this one was not needed here
                    state.ptr, state.fails, state.on_step = state.ptr + 1, 0, 0
                    continue
            act = self._goto(state, at, priors, sem)
            if act is None:
                return (
                    None,
                    {**info, "stuck": f"cannot carry out: {fill(st['action'], state.binding)}"},
                    (0, 0),
                )
            return act, {**info, "op": "goto"}, (0, 0)
        return None, {"stuck": "no progress"}, (0, 0)

    def _nav_targets(self, state: _Run, sem: ActionSemantics) -> list[tuple[str, str]]:
        out = []
        for a in state.admissible:
            if sem.is_navigation(a):
                loc = sem.location(a)
                if loc and normalize(loc) != state.place:
                    out.append((normalize(loc), a))
        return out

    def _reveal(self, state: _Run, sem: ActionSemantics) -> str | None:
        if state.place is None or state.place in state.revealed:
            return None
        templates = state.reveal
        for a in state.admissible:
            abs_a, _ = self._abstract(state, a)
            if abs_a in templates:
                return a
        return None

    def _at_place(self, state: _Run, at: str | None) -> bool:
        if at in (None, "*"):
            return True
        if state.place is None:
            return False
        if at.startswith("@"):
            return state.found_place.get(at[1:]) == state.place
        ptype = state.mentions.type_of(state.place)
        if at.startswith("{"):
            return ptype == normalize(state.binding.get(at[1:-1], ""))
        return ptype == at.strip("<>")

    def _goto(
        self, state: _Run, at: str | None, priors: Priors, sem: ActionSemantics
    ) -> str | None:
        if at is None or at == "*":
            st = state.steps[state.ptr]
            slots = [s for s in state.binding if "{" + s + "}" in st["action"]]
            return self._search(state, slots[0] if slots else "", priors, sem, any_place=True)
        if at.startswith("@"):
            place = state.found_place.get(at[1:])
            for loc, a in self._nav_targets(state, sem):
                if loc == place:
                    return a
            return self._search(state, at[1:], priors, sem)
        want = normalize(state.binding.get(at[1:-1], "")) if at.startswith("{") else at.strip("<>")
        tried = state.tried_places[state.ptr]
        options = [
            (loc, a)
            for loc, a in self._nav_targets(state, sem)
            if state.mentions.type_of(loc) == want
        ]
        fresh = [(loc, a) for loc, a in options if loc not in tried]
        if not fresh:
            return None
        loc, a = fresh[0]
        tried.add(loc)
        return a

    def _search(
        self,
        state: _Run,
        slot: str,
        priors: Priors,
        sem: ActionSemantics,
        *,
        any_place: bool = False,
    ) -> str | None:
        """Go to the most promising place not yet searched for ``slot``'s entity."""
        want = normalize(state.binding.get(slot, ""))
        idx = state.ptr
        distinct = set()
        nxt = state.steps[idx + 1] if idx + 1 < len(state.steps) else None
        if nxt is not None:
            for s in nxt.get("distinct", []):
                distinct |= state.used[(nxt["action"], s)]
        targets = self._nav_targets(state, sem)
        tried = state.tried_places[idx]
        if state.retried:
            # a second pass goes back to where the first one found it
            back = state.found_place.get(slot)
            for loc, a in targets:
                if back and loc == back and loc not in tried:
                    tried.add(loc)
                    return a
        # where this episode has already seen one (certain, so first)
        for inst, place in state.seen_at.items():
            if place and inst not in distinct and state.mentions.type_of(inst) == want:
                for loc, a in targets:
                    if loc == place and loc not in tried:
                        tried.add(loc)
                        return a
        best: tuple[float, int, str, str] | None = None
        for order, (loc, a) in enumerate(targets):
            if loc in tried or (loc in state.searched and not any_place):
                continue
            ptype = state.mentions.type_of(loc)
            score = priors.score(want, ptype) / priors.cost(ptype) if self.config.priors else 0.0
            cand = (score, -order, loc, a)
            if best is None or cand > best:
                best = cand
        if best is None:
            return None
        tried.add(best[2])
        return best[3]

    # -- after the environment answered ---------------------------------------

    def _note_seen(self, state: _Run, action: str, obs: str, sem: ActionSemantics) -> list[str]:
        seen = state.mentions.observe(action, obs)
        for name in seen:
            if name != state.place:
                state.seen_at[name] = state.place
                if state.place:
                    state.contents[state.place].add(state.mentions.type_of(name))
        return seen

    def _after(
        self,
        state: _Run,
        action: str,
        obs: str,
        info: dict[str, Any],
        env: Env,
        sem: ActionSemantics,
        step_info: dict[str, Any],
    ) -> None:
        failed = sem.failed(action, obs)
        state.admissible = list(info.get("admissible") or env.admissible_actions() or [])
        state.on_step += 1
        if sem.is_navigation(action) and not failed:
            loc = sem.location(action)
            state.place = normalize(loc) if loc else None
            self._note_seen(state, action, obs, sem)
            # a place with nothing to open has been fully looked at on arrival
            if state.place and self._reveal(state, sem) is None:
                state.searched.add(state.place)
            state.last_obs = obs
            return
        op = step_info.get("op")
        if op == "reveal" or (op == "find" and not failed and not sem.is_navigation(action)):
            if state.place:
                state.revealed.add(state.place)
                state.searched.add(state.place)
            self._note_seen(state, action, obs, sem)
            state.last_obs = obs
            return
        self._note_seen(state, action, obs, sem)
        changed = obs.strip() != state.last_obs.strip()
        state.last_obs = obs
        if state.ptr >= len(state.steps):
            return
        st = state.steps[state.ptr]
        if op == "read":
            value = read_value(obs, st.get("before", []), st.get("after", []))
            if value:
                state.binding[st["slot"]] = value
                state.mentions.add([value])
                step_info["read"] = {st["slot"]: value}
            state.ptr += 1
            state.fails = state.on_step = 0
            return
        if st["op"] != "act":
            return
        if step_info.get("op") != "act":
            # the LLM acted: it counts for the step if it matches it
            abs_a, _ = self._abstract(state, action)
            if not _matches(abs_a, st["action"]):
                return
        confirmed = (not failed and changed) if self.config.confirm else True
        if confirmed:
            _, used = self._abstract(state, action)
            for s, inst in used.items():
                state.used[(st["action"], s)].add(inst)
                state.seen_at.pop(inst, None)  # it moved with us
            state.ptr += 1
            state.fails = state.on_step = 0
        else:
            state.fails += 1
            state.bad[state.ptr].add(action)

    # -- the LLM's turns ------------------------------------------------------

    def _llm_act(self, state: _Run, task: str, traj: Trajectory) -> tuple[str, int, int]:
        assert self.llm is not None
        recent = traj.steps[-5:]
        history = "\n".join(f"> {s.action}\n{s.observation[:300]}" for s in recent)
        step = state.steps[state.ptr] if state.ptr < len(state.steps) else None
        current = (
            fill(
                "find {" + step["what"] + "}"
                if step["op"] == "find"
                else step["action"].replace("{@}", "it"),
                state.binding,
            )
            if step
            else "finish the task"
        )
        choices = [a for a in state.admissible if a] or ["look"]
        if len(choices) > _LLM_CHOICES:
            # Some environments admit thousands of actions: the model sees, and may pick
            # from, those closest to the current step (stable order among equals).
            step_text = normalize(current)
            ranked = sorted(choices, key=lambda a: -_similarity(normalize(a), step_text))
            choices = ranked[:_LLM_CHOICES]
        msgs: list[Message] = [
            {
                "role": "system",
                "content": "You act in a text environment. Answer with one action from the list.",
            },
            {
                "role": "user",
                "content": (
                    f"Task: {task}\nPlan:\n{describe(state.program, state.binding)}\n"
                    f"Current step: {current}\nRecent:\n{history}\n"
                    "Actions:\n" + "\n".join(choices) + "\nNext action:"
                ),
            },
        ]
        c = self.llm.complete(msgs, max_tokens=32, choices=choices)
        action = c.text if c.text in choices else choices[0]
        return action, c.prompt_tokens, c.completion_tokens
