"""Compiling same-template trajectories into a :class:`~memp.types.Program`, and
building a memory of such programs.

The task's entities become slots (``{object}``, ``{target}``), navigation and no-op
steps drop out, places that vary across trajectories become search steps (``find
{object}``), constant ones are kept, and a value only a reading revealed (an
ingredient named in a cookbook) becomes a read slot with the step that reads it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

from memp.errors import InvalidInput
from memp.skills.priors import Priors
from memp.skills.text import (
    PIECE,
    READ_PREFIX,
    Mentions,
    abstract,
    look_action,
    read_span,
    verb,
    words,
)
from memp.template import align, fill, mask, normalize, slots_of
from memp.types import Procedure, Program, ProgramStep, Trajectory

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics, Env

# A step while compiling, with the instances its slots stood for in its trajectory.
_Draft = tuple[ProgramStep, dict[str, str]]


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


def _generalize(actions: Sequence[str]) -> str:
    """One action template for the same step across trajectories: differing pieces become <*>."""
    base = PIECE.findall(actions[0])
    for other in actions[1:]:
        pieces = PIECE.findall(other)
        out: list[str] = []
        for tag, i1, i2, _, _ in SequenceMatcher(None, base, pieces, autojunk=False).get_opcodes():
            if tag == "equal":
                out.extend(base[i1:i2])
            elif not out or out[-1] != "<*>":
                out.append("<*>")
        base = out
    return " ".join(base)


class _Abstractor:
    """Turns one trajectory into abstract steps (+ the reveal templates it used)."""

    def __init__(
        self, trajectory: Trajectory, semantics: ActionSemantics, binding: dict[str, str]
    ) -> None:
        self.trajectory = trajectory
        self.sem = semantics
        self.mentions = Mentions(semantics)
        first_obs = trajectory.metadata.get("initial_observation")
        if isinstance(first_obs, str):
            self.mentions.observe("", first_obs)
        # the task's own values are names, as at run time (see memp.skills.runtime)
        self.mentions.add([v for v in binding.values() if v])
        self.slot_of_type = {normalize(v): k for k, v in binding.items()}
        self.task_words = set(words(trajectory.task))
        self.steps: list[_Draft] = []
        self.reveal: set[str] = set()
        self.readings: list[tuple[str, list[str]]] = []  # (action, observation words)
        self.read_slots: dict[str, str] = {}  # value -> read slot

    def run(self, *, literal: bool) -> tuple[list[_Draft], set[str]]:
        sem, mentions = self.sem, self.mentions
        place: str | None = None
        first_seen: dict[str, str | None] = {}
        acted_on: set[str] = set()
        look = look_action(sem)
        looks = normalize(look) if look else None
        for step in self.trajectory.steps:
            a, o = step.action, step.observation
            nav = sem.is_navigation(a)
            if nav:
                loc = sem.location(a)
                place = normalize(loc) if loc else None
            if looks is not None and normalize(a) == looks:
                # looking around lists what is here: things present, not values read
                for name in mentions.observe(a, o):
                    first_seen.setdefault(name, place)
                continue
            if not nav and sem.is_noop(a) and not sem.failed(a, o) and not literal:
                self.readings.append((normalize(a), words(o)))
                continue
            if not nav and (sem.is_noop(a) or sem.failed(a, o)):
                continue
            before = set(first_seen)
            for name in mentions.observe(a, o):
                first_seen.setdefault(name, place)
            if nav and not literal:
                continue
            abs_a, used = abstract(
                a, mentions, place=place, slot_of_type=self.slot_of_type, literal=literal
            )
            if not literal and not nav and self.readings:
                abs_a = self._with_read_slot(abs_a, place)
            if literal:
                self.steps.append((ProgramStep(op="act", action=abs_a, at=None), used))
                continue
            named = mentions.named(a)
            if named and all(n == place for n in named) and set(first_seen) - before:
                self.reveal.add(abs_a)  # opening a container: part of looking, not of the task
                continue
            # picked up where it was found: the place is wherever the search finds it
            found_here = [
                s
                for s, inst in used.items()
                if inst != place and first_seen.get(inst) == place and inst not in acted_on
            ]
            acted_on.update(used.values())
            self.steps.append(
                (ProgramStep(op="act", action=abs_a, at=self._at(place, found_here)), used)
            )
        return self.steps, self.reveal

    def _at(self, place: str | None, found_here: list[str]) -> str | None:
        if place is None:
            return None
        if found_here:
            return "@" + found_here[0]
        ptype = self.mentions.type_of(place)
        if ptype in self.slot_of_type:
            return "{" + self.slot_of_type[ptype] + "}"
        return f"<{ptype}>"

    def _with_read_slot(self, abs_a: str, place: str | None) -> str:
        """Replace a value an earlier reading revealed by a read slot, adding the read step."""
        found = read_span(abs_a, self.readings, self.task_words)
        if found is None:
            return abs_a
        i, j, r, at = found
        pieces = PIECE.findall(abs_a)
        value = " ".join(w for p in pieces[i:j] for w in words(p))
        slot = self.read_slots.get(value)
        if slot is None:
            slot = self.read_slots[value] = f"{READ_PREFIX}{len(self.read_slots) + 1}"
            action, ws = self.readings[r]
            n = len(value.split())
            read = ProgramStep(
                op="read",
                action=action,
                slot=slot,
                at=None if place is None else "*",
                # the words around the value: how to find it in a new episode's reading
                before=ws[max(0, at - 2) : at],
                after=ws[at + n : at + n + 1],
            )
            self.steps.append((read, {}))
        return " ".join([*pieces[:i], "{" + slot + "}", *pieces[j:]])


def _with_finds(steps: list[_Draft]) -> list[_Draft]:
    out: list[_Draft] = []
    for st, inst in steps:
        at = st.at
        if st.op == "act" and isinstance(at, str) and at.startswith("@"):
            prev = out[-1][0] if out else None
            if not (prev and (prev.at == at or prev.what == at[1:])):
                out.append((ProgramStep(op="find", what=at[1:]), {}))
        out.append((st, inst))
    return out


def _mark_distinct(steps: list[_Draft]) -> None:
    # A step repeated on a different instance (take the second cellphone) must not
    # pick the instance an earlier copy of the step used.
    seen: dict[str | None, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for st, inst in steps:
        if st.op != "act":
            continue
        prior = seen[st.action]
        distinct = [s for s, i in inst.items() if prior.get(s) and i not in prior[s]]
        if distinct:
            st.distinct = distinct
        for s, i in inst.items():
            prior[s].add(i)


def _merge(column: list[ProgramStep]) -> ProgramStep:
    """One step from the same position of several trajectories' programs."""
    st = column[0].model_copy(deep=True)
    if st.op == "act":
        actions = list(dict.fromkeys(c.action or "" for c in column))
        if len(actions) > 1:
            st.action = _generalize(actions)
        if len({c.at for c in column}) > 1:
            st.at = "*"
        distinct = sorted({d for c in column for d in c.distinct})
        if distinct:
            st.distinct = distinct
    elif st.op == "read":
        # the most common wording and context across trajectories
        st.action = Counter(c.action for c in column).most_common(1)[0][0]
        st.before = list(Counter(tuple(c.before) for c in column).most_common(1)[0][0])
        st.after = list(Counter(tuple(c.after) for c in column).most_common(1)[0][0])
    return st


def compile_program(
    trajectories: Sequence[Trajectory],
    semantics: ActionSemantics,
    *,
    key: str | None = None,
    generalize: bool = True,
) -> Program:
    """Compile same-template trajectories into one parametrized program.

    ``generalize=False`` keeps the first trajectory as it is (navigation included,
    places literal): the no-compilation baseline.
    """
    if not trajectories:
        raise InvalidInput("compile_program needs at least one trajectory of the task template")
    per: list[tuple[list[_Draft], set[str]]] = []
    keys: list[str] = []
    for traj in trajectories if generalize else trajectories[:1]:
        k, binding = task_template(traj, semantics)
        if key is not None:
            b = align(traj.task, key)
            if b is not None:
                k, binding = key, b
        keys.append(k)
        steps, reveal = _Abstractor(traj, semantics, binding).run(literal=not generalize)
        _mark_distinct(steps)
        per.append((_with_finds(steps) if generalize else steps, reveal))
    key = key or Counter(keys).most_common(1)[0][0]
    # the most common step skeleton (ops and verbs) wins; places that differ among
    # its members become searches, arguments that differ become wildcards
    skel = [
        tuple((s.op, verb(s.action or ""), s.what or s.slot) for s, _ in steps) for steps, _ in per
    ]
    counts = Counter(skel)
    best = max(counts, key=lambda s: (counts[s], -len(s)))
    members = [per[i][0] for i, s in enumerate(skel) if s == best]
    merged = [_merge([m[pos][0] for m in members]) for pos in range(len(best))]
    return Program(
        key=key,
        slots=slots_of(key),
        steps=merged,
        reveal=sorted(set().union(*(r for _, r in per))),
        generalized=generalize,
        sources=[t.id for t in trajectories[: len(per)]],
    )


def describe(program: Program, binding: dict[str, str] | None = None) -> str:
    """The program as numbered lines (for prompts and for people)."""
    lines = []
    for i, st in enumerate(program.steps, 1):
        lines.append(f"{i}. {fill(step_text(st, plan=True), binding or {})}")
    return "\n".join(lines)


def step_text(st: ProgramStep, *, plan: bool = False) -> str:
    """What a step asks for, in words (``plan``: with its place and what it notes)."""
    if st.op == "find":
        return "find {" + str(st.what) + "}"
    if st.op == "read" and plan:
        return f"{st.action}  (note the {{{st.slot}}})"
    text = str(st.action).replace("{@}", "it")
    if plan and isinstance(st.at, str) and st.at.startswith(("{", "<")):
        text += f"  (at {st.at})"
    return text


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
    (undistilled) trajectory in ``program.priors``. Only successful trajectories
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
        program.priors = priors.record()
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
