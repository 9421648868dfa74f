"""Adapting stored programs to a task no template matches, in a small checked line format.

The LLM writes the new task's program from the nearest stored programs (by template
wording), one step per line::

    find {object}
    take {object} from {@} [at @object]
    cool {object} with {@} [at <fridge>]
    move {object} to {@} [at {target}]

A line is ``find {slot}`` or an action pattern (``{slot}`` a task value, ``{@}`` the
place the skill stands, ``<type>`` any instance of a type) with an optional place in
brackets, as :class:`~memp.types.ProgramStep` has them (``@slot``: where the search
found the slot's thing; ``{slot}``, ``<type>``, ``*``). Every line is checked against
the environment's action grammar (:func:`action_grammar`) before anything runs; a
program with a line outside it is refused with the reason. With ``constrained`` the
model picks each line from the grammar's lines (``choices``: a grammar or token trie
on llama.cpp), so it cannot write an invalid one; otherwise it writes the whole
program as text and the check decides. A step repeated on the same slot takes a new
instance (the second of two apples), as compiled programs do.

No environment facts here: the grammar comes from the adapter where it offers one
(``semantics.action_patterns()``), else from what memory and the episode show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memp.skills.text import FILLER, PIECE, Mentions, abstract, differing_words, key_words, verb
from memp.template import normalize, slots_of
from memp.types import Procedure, Program, ProgramStep

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics
    from memp.llm.base import LLM, Message

END = "END"
DROP = "(leave this step out)"
_AT = re.compile(r"^(?P<action>.*?)\s*\[at (?P<at>[^\]]+)\]$")
_ARG = re.compile(r"^(\{[^}]*\}|<[^>]*>)$")
_LINE_NO = re.compile(r"^\s*(?:\d+[.)]|[-*])\s*")


def shape(pattern: str) -> str:
    """An action pattern with its arguments as holes: ``heat {object} with {@}`` ->
    ``heat _ with _`` (what the grammar checks: the verb and how arguments sit)."""
    out: list[str] = []
    for p in PIECE.findall(normalize(pattern)):
        if _ARG.match(p) or p.isdigit():
            if not out or out[-1] != "_":
                out.append("_")
        else:
            out.append(p)
    return " ".join(out)


@dataclass
class Grammar:
    """The action shapes a program line may take, each with where it was learned.

    ``shapes``: ``heat _ with _`` -> "environment" | "memory" | "episode" | "task verb";
    ``lines``: ready lines (with their places) offered to a constrained model;
    ``places``: place kinds a new step may be done at (``<fridge>``, ...);
    ``here``: those the episode's admissible actions show (this room has them).
    """

    shapes: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    here: list[str] = field(default_factory=list)

    def source_of(self, action: str) -> str | None:
        return self.shapes.get(shape(action))


def _program_lines(program: Program) -> list[str]:
    out = []
    for st in program.steps:
        if st.op == "find":
            out.append(f"find {{{st.what}}}")
        elif st.op == "act":
            at = f" [at {st.at}]" if st.at else ""
            out.append(f"{st.action}{at}")
    return out


def program_text(program: Program) -> str:
    """A program in the line format (read steps left out: lines carry act and find)."""
    return "\n".join(_program_lines(program))


def action_grammar(
    semantics: ActionSemantics,
    procedures: Iterable[Procedure],
    *,
    admissible: Sequence[str] = (),
    task_key: str = "",
    sources: Sequence[Procedure] = (),
) -> Grammar:
    """What a program line may say in this environment.

    - the adapter's own action patterns, where it offers them
      (``semantics.action_patterns()``: "cool {o} with {r}", ...);
    - every act step of the stored programs (with its place) and the episode's
      admissible actions, abstracted (navigation and no-ops left out, as programs do);
    - a verb the task names that nothing else knows ("cool" with no cooling stored):
      the shapes of the nearest programs' steps with their verb replaced by it.
      Without the adapter's patterns these are unconfirmed until the skill finds the
      action admissible; the runtime plays only admissible actions either way.
    """
    g = Grammar()
    env_patterns = getattr(semantics, "action_patterns", None)
    for p in (env_patterns() if callable(env_patterns) else None) or []:
        if not semantics.is_navigation(p) and not semantics.is_noop(p):
            g.shapes.setdefault(shape(p), "environment")
    places: dict[str, None] = {}
    here: dict[str, None] = {}
    for proc in procedures:
        prog = proc.program
        if prog is None:
            continue
        for st in prog.steps:
            if st.op != "act":
                continue
            g.shapes.setdefault(shape(str(st.action)), "memory")
            if st.at and st.at.startswith("<"):
                places[st.at] = None
        if prog.priors is not None:
            places.update({f"<{t}>": None for t in prog.priors.visits})
    mentions = Mentions(semantics)
    for a in admissible:
        mentions.observe(a, "")
    for a in admissible:
        if semantics.is_navigation(a):
            loc = semantics.location(a)
            if loc:
                here[f"<{normalize(semantics.entity_type(loc))}>"] = None
            continue
        if semantics.is_noop(a):
            continue
        g.shapes.setdefault(shape(abstract(a, mentions, place=None, slot_of_type={})[0]), "episode")
    known_verbs = {s.split()[0] for s in g.shapes}
    vocab = {w for p in procedures if p.task_key for w in key_words(p.task_key)}
    new_verbs = [
        w
        for w in key_words(task_key)
        if not w.startswith("{") and w not in FILLER and w not in known_verbs and w not in vocab
    ]
    lines: dict[str, None] = {}
    for proc in sources:
        for line in _program_lines(proc.program) if proc.program else []:
            lines[line] = None
    for proc in procedures:
        for line in _program_lines(proc.program) if proc.program else []:
            lines[line] = None
    g.places = sorted(places | here)
    g.here = sorted(here)
    for w in new_verbs:
        for proc in sources:
            for st in proc.program.steps if proc.program else []:
                if st.op != "act" or verb(str(st.action)).startswith(("{", "<")):
                    continue
                pieces = PIECE.findall(str(st.action))
                new = " ".join([w, *pieces[1:]])
                g.shapes.setdefault(shape(new), "task verb")
                for at in [*g.places, "*"]:
                    lines[f"{new} [at {at}]"] = None
    slots = slots_of(task_key)
    g.lines = [*(f"find {{{s}}}" for s in slots), *lines]
    # only lines over the task's own slots
    g.lines = [ln for ln in dict.fromkeys(g.lines) if _slots_ok(ln, slots)]
    return g


def _split(line: str) -> tuple[str, str | None]:
    # a line's action and its place (None when it names none)
    m = _AT.match(line)
    return (m.group("action").strip(), m.group("at").strip()) if m else (line.strip(), None)


def _frame(line: str) -> str:
    # a line's form without its verb and place: what another verb must fit
    return " ".join(shape(_split(line)[0]).split()[1:])


def _variants(line: str, grammar: Grammar) -> list[str]:
    frame = _frame(line)
    head = line.split()[0] if line else ""
    out = [
        c
        for c in grammar.lines
        if c != line and _frame(c) == frame and (c.split()[0] != "find") == (head != "find")
    ]
    if head != "find":
        # the same action done elsewhere (a repair may only need another place)
        action = _split(line)[0]
        out += [f"{action} [at {p}]" for p in [*grammar.places, "*"]]
    return [c for c in dict.fromkeys(out) if c != line]


# Number words are language, not environment: "two" in a task where the nearest
# template has none asks for the steps twice.
COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5, "both": 2, "pair": 2}


def count_of(task_key: str, key: str) -> int | None:
    """How many times the steps of ``key`` are needed for ``task_key``, when a count
    word (or digit) the task has and the template lacks says it; None otherwise."""
    have = set(key_words(key))
    for w in key_words(task_key):
        if w in have:
            continue
        if w in COUNTS:
            return COUNTS[w]
        if w.isdigit() and 1 < int(w) <= 9:
            return int(w)
    return None


def bind_near(task: str, keys: Iterable[str]) -> tuple[str, dict[str, str]] | None:
    """The task's template and binding from a stored template it is at most one word
    away from, word for word ("put two alarmclock in dresser" against "put a {object}
    in {target}" -> "put two {object} in {target}", alarmclock, dresser): the
    binding of a task whose things memory has never seen. One word per slot."""
    words = normalize(task).split()
    for key in keys:
        kw = normalize(key).split()
        if len(kw) != len(words):
            continue
        binding: dict[str, str] = {}
        out: list[str] = []
        changed = 0
        for k, w in zip(kw, words, strict=True):
            m = re.fullmatch(r"\{([a-z0-9_]+)\}", k)
            if m:
                if binding.setdefault(m.group(1), w) != w:
                    break
                out.append(k)
            else:
                changed += k != w
                out.append(w)
        else:
            if changed <= 1 and binding:
                return " ".join(out), binding
    return None


def _slots_ok(line: str, slots: Sequence[str]) -> bool:
    used = {s for s in re.findall(r"\{([^}@]*)\}", line)}
    return used <= set(slots)


def check_program(
    lines: Sequence[str], grammar: Grammar, key: str
) -> tuple[Program | None, list[str]]:
    """The program the lines make, or None with the reasons it is refused."""
    slots = slots_of(key)
    errors: list[str] = []
    steps: list[ProgramStep] = []
    for n, raw in enumerate(lines, 1):
        line = _LINE_NO.sub("", raw).strip()
        if not line or line == END:
            continue
        action, at = _split(line)
        unknown = set(re.findall(r"\{([^}@]*)\}", line)) - set(slots)
        if unknown:
            errors.append(f"line {n} {raw!r}: no slot {', '.join(sorted(unknown))} in {key!r}")
            continue
        fm = re.fullmatch(r"find \{([^}]+)\}", action)
        if fm:
            steps.append(ProgramStep(op="find", what=fm.group(1)))
            continue
        if at is not None and not re.fullmatch(r"\*|@[a-z0-9_]+|\{[a-z0-9_]+\}|<[^<>]+>", at):
            errors.append(f"line {n} {raw!r}: the place {at!r} is not *, @slot, {{slot}} or <type>")
            continue
        if at is not None and at.startswith("@") and at[1:] not in slots:
            errors.append(f"line {n} {raw!r}: no slot {at[1:]} in {key!r}")
            continue
        if grammar.source_of(action) is None:
            errors.append(
                f"line {n} {raw!r}: {shape(action)!r} is not an action of this environment"
            )
            continue
        steps.append(ProgramStep(op="act", action=normalize(action), at=at))
    acts = [s for s in steps if s.op == "act"]
    if not errors and not acts:
        errors.append("the program has no action step")
    used = {s.what for s in steps if s.op == "find"} | {
        x for s in acts for x in re.findall(r"\{([^}@]*)\}", f"{s.action} {s.at or ''}")
    }
    used |= {str(s.at)[1:] for s in acts if str(s.at).startswith("@")}
    missing = [s for s in slots if s not in used]
    if not errors and missing:
        errors.append(f"the program never uses {', '.join('{' + s + '}' for s in missing)}")
    if errors:
        return None, errors
    _mark_repeats(acts)
    return Program(key=key, slots=slots, steps=steps, generalized=True), []


def _with_sources(program: Program, sources: Sequence[Procedure]) -> Program:
    # how to look inside places is a fact of the environment the sources learned
    reveal = sorted({r for p in sources if p.program for r in p.program.reveal})
    return program.model_copy(update={"reveal": reveal})


def _mark_repeats(acts: list[ProgramStep]) -> None:
    # the same step again on the same slot means another instance (two apples)
    seen: set[str] = set()
    for st in acts:
        action = str(st.action)
        if action in seen:
            st.distinct = sorted(set(re.findall(r"\{([^}@]*)\}", action)))
        seen.add(action)


@dataclass
class Adapted:
    """What adaptation produced: the program (None when refused, ``reason`` says why),
    the lines as written, the procedures it was adapted from, the tokens spent."""

    key: str
    program: Program | None
    lines: list[str]
    sources: list[str]
    tokens: dict[str, int]
    reason: str | None = None
    grammar: dict[str, str] = field(default_factory=dict)  # line -> where its shape came from

    def record(self) -> dict[str, Any]:
        """The hand-over, as the episode's metadata keeps it."""
        out: dict[str, Any] = {
            "key": self.key,
            "from": self.sources,
            "lines": self.lines,
            "tokens": self.tokens,
            "valid": self.program is not None,
        }
        if self.reason:
            out["refused"] = self.reason
        if self.grammar:
            out["grammar"] = self.grammar
        return out


_SYSTEM = (
    "You write the program for a new task by changing the programs of similar tasks. "
    "One step per line: 'find {slot}' or an action with its place in brackets. "
    "Keep the steps that still apply, change the action that differs (the task's own "
    "verb), repeat steps when the task asks for more than one thing."
)


_PLACE = "You answer with the one listed place that fits the question."


def word_change(task_key: str, key: str) -> tuple[list[str], list[str]] | None:
    """The words ``key`` has where ``task_key`` has others, when they differ in one
    place: ``(["heat"], ["cool"])``; None otherwise."""
    return differing_words(key_words(key), key_words(task_key))


def swapped_word(task_key: str, key: str) -> tuple[str, str] | None:
    """The one word of the template the task replaces, and its replacement:
    ``("heat", "cool")``; None when they differ otherwise."""
    change = word_change(task_key, key)
    if change is None or len(change[0]) != 1 or len(change[1]) != 1:
        return None
    return change[0][0], change[1][0]


def one_word_apart(task_key: str, key: str) -> bool:
    """One word of the template replaced by another gives the task."""
    return swapped_word(task_key, key) is not None


def _prompt(task_key: str, sources: Sequence[Procedure], so_far: Sequence[str]) -> str:
    parts = []
    change = word_change(task_key, str(sources[0].task_key)) if sources else None
    hint = ""
    if change and change[0] and change[1]:
        # the one thing a small model must notice: which words the new task swaps
        hint = (
            f"\nThe new task says {' '.join(change[1])!r} where the first task says "
            f"{' '.join(change[0])!r}."
        )
    for p in sources:
        assert p.program is not None
        parts.append(f"Task: {p.task_key}\nProgram:\n{program_text(p.program)}")
    body = "\n\n".join(parts)
    done = "\n".join(so_far)
    return f"{body}\n\nTask: {task_key}{hint}\nProgram:\n{done}" + ("\n" if done else "")


def adapt_program(
    llm: LLM,
    task_key: str,
    sources: Sequence[Procedure],
    grammar: Grammar,
    *,
    constrained: bool = True,
    max_lines: int | None = None,
) -> Adapted:
    """Have ``llm`` write the program of ``task_key`` from ``sources`` (see the module
    docstring); the result is checked against ``grammar`` either way."""
    sources = [p for p in sources if p.program is not None]
    ids = [p.id for p in sources]
    used = {"prompt": 0, "completion": 0}
    if not sources:
        return Adapted(task_key, None, [], ids, used, "no stored program to adapt from")
    longest = max(len(p.program.steps) for p in sources if p.program)
    limit = max_lines or 2 * longest + 2
    lines: list[str] = []

    def ask(content: str, system: str = _SYSTEM, **kw: Any) -> str:
        msgs: list[Message] = [
            {"role": "system", "content": system},
            {"role": "user", "content": content},
        ]
        c = llm.complete(msgs, **kw)
        used["prompt"] += c.prompt_tokens
        used["completion"] += c.completion_tokens
        return c.text

    if constrained:
        # Edit the nearest program line by line: a small model copies well and plans
        # badly, so each of its lines is kept or swapped for a grammar line of the same
        # form (another verb or place), and the steps may be repeated for a count.
        base = _program_lines(sources[0].program) if sources[0].program else []
        slots = slots_of(task_key)
        # the word the nearest template has where the task has another ("clean" for
        # "cool"): a line doing it is changed or dropped, never kept, as a template
        # with another task-type word is never bound
        swap = swapped_word(task_key, str(sources[0].task_key))
        gone = swap[0] if swap else None
        for n, old in enumerate(base, 1):
            old_action, old_at = _split(old)
            choices = list(dict.fromkeys([old, *_variants(old, grammar), DROP]))
            choices = [c for c in choices if c == DROP or _slots_ok(c, slots)]
            if gone is not None and verb(old_action) == gone:
                choices = [c for c in choices if c == DROP or verb(c) != gone]
            q = f"Line {n} of the first program: {old}\nLine {n} of the new program:"
            pick = ask(_prompt(task_key, sources, lines) + q, max_tokens=40, choices=choices)
            if pick.strip() not in choices or pick.strip() == DROP:
                continue
            action, at = _split(pick.strip())
            if verb(action) != verb(old_action) and at and at.startswith("<"):
                # another verb is done somewhere else (heat at the microwave, cool at
                # the fridge): its place is asked for alone, since next to the
                # programs a small model copies their places, and the old verb's place
                # is not offered (the 1.5B model cooled at the sink it cleaned at); the
                # places of this episode where it shows them (memory's places of other
                # rooms drew the 1.5B model to a coffee table for cooling)
                offered = grammar.here or grammar.places
                kinds = {p[1:-1]: p for p in offered if p != old_at} or {at[1:-1]: at}
                q = f"Which of these places is used to {verb(action)} things: {', '.join(kinds)}?"
                said = ask(q + "\nAnswer:", max_tokens=12, choices=list(kinds), system=_PLACE)
                at = kinds.get(said.strip(), "*")
            lines.append(f"{action} [at {at}]" if at else action)
        times = count_of(task_key, str(sources[0].task_key))
        if times is None:
            q = "Does the new task need all these steps again, for another one of the same thing?"
            again = ask(_prompt(task_key, sources, lines) + q, max_tokens=3, choices=["no", "yes"])
            times = 2 if again.strip() == "yes" else 1
        lines = lines * times
    else:
        text = ask(
            _prompt(task_key, sources, []) + "(one step per line, then END)",
            max_tokens=40 * limit,
            stop=[END],
        )
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()][:limit]
    program, errors = check_program(lines, grammar, task_key)
    if program is not None:
        program = _with_sources(program, sources)
    where = {ln: grammar.source_of(_split(ln)[0]) or "" for ln in lines}
    return Adapted(
        task_key,
        program,
        lines,
        ids,
        used,
        "; ".join(errors) or None,
        {ln: w for ln, w in where.items() if w and w != "memory"},
    )
