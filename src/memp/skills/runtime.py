"""One episode of a :class:`~memp.types.Program`, with no LLM inside.

A :class:`SkillRun` holds what the skill tracks while it plays (the step pointer,
where it is, what it has seen where, which places it searched, which actions failed)
and decides the next action: ground the current step in the admissible actions
(exact matches first, then ranked rewordings), search for what a step needs in the
order the priors suggest, open places where things may be hidden, and advance when
the environment confirms a step. Where it cannot go on it says why; whoever drives
it (:class:`memp.agents.skill.SkillAgent`) decides whether an LLM takes over.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memp.skills.priors import Priors
from memp.skills.text import (
    READ_PREFIX,
    Mentions,
    abstract,
    look_action,
    matches,
    read_values,
    same_entities,
    similarity,
    slots_in,
    verb,
)
from memp.template import fill, normalize
from memp.types import Program, ProgramStep

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics


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
    # actions the LLM takes in one episode, hand-overs together: past them the skill goes
    # on alone (a stuck step handed over again and again made a 300-step episode 300
    # LLM calls that never moved the program on)
    llm_steps: int = 30
    # environment steps on one program step before the LLM is asked (below max_steps,
    # so a stuck search reaches recovery with the shipped defaults)
    stall_after: int = 12
    # a program that ran to its end without success runs once more from its first step,
    # with what the episode learned (where things are): a step done too early (the lamp
    # switched on before the object was in hand) is done again in its place
    retry: bool = True
    rank_threshold: float = 0.6
    # a task no template matches: the LLM writes its program from the nearest stored
    # programs (memp.skills.adapt), checked against the action grammar before it runs
    adapt: bool = True
    adapt_k: int = 2  # nearest procedures (by template wording) shown to the LLM
    adapt_constrained: bool = True  # the LLM picks each line among the grammar's lines

    @classmethod
    def no_llm(cls, **overrides: Any) -> ExecConfig:
        base = dict(
            bind_llm=False, llm_tiebreak=False, llm_recovery=False, llm_fallback=False, adapt=False
        )
        base.update(overrides)
        return cls(**base)


@dataclass
class Decision:
    """The next action (None: the skill is stuck, ``info["stuck"]`` says why)."""

    action: str | None
    info: dict[str, Any]
    tokens: tuple[int, int] = (0, 0)  # spent by a tie-break


# Picks among equally good, genuinely different candidates: (action, info, tokens).
TieBreak = Callable[["SkillRun", list[str]], tuple[str, dict[str, Any], tuple[int, int]]]


@dataclass
class SkillRun:
    """Everything the skill tracks during one episode, and how it acts on it."""

    program: Program
    binding: dict[str, str]
    semantics: ActionSemantics
    priors: Priors
    config: ExecConfig
    reveal: set[str] = field(default_factory=set)  # action templates that look inside a place
    mentions: Mentions = field(init=False)
    _known: frozenset[str] = field(init=False, repr=False)  # the places the env declares
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
    # abstract forms of rewordings that failed on a step: the other instances of the
    # same rewording would fail the same way (a list may offer what the parser refuses)
    bad_forms: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    used: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    fails: int = 0
    on_step: int = 0
    retried: bool = False
    # Steps whose learned place (a "<type>" where training found the thing) ran out:
    # they may be done wherever the thing they name turns up.
    roaming: set[int] = field(default_factory=set)
    # Steps on the task's own things passed over because the next step could be done
    # first (the tin is in the cupboard the next step opens): done as soon as they can be.
    deferred: set[int] = field(default_factory=set)
    # Answers put off that the program came back for: searched for, not put off again.
    sought: set[int] = field(default_factory=set)
    # The map this episode has seen: place -> {next place: the action that goes there},
    # and the closed ways: place -> {next place: the action that opens the way there}.
    ways: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    doors: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    # What the environment said of a thing in brackets after its name ("flower pot 9
    # (containing a apple tree in the adult stage, soil)"), and the words of the things
    # the episode has acted on: of two interchangeable instances, the one holding what
    # was just focused on or taken is the one meant.
    described: dict[str, str] = field(default_factory=dict)
    acted_words: set[str] = field(default_factory=set)
    observations: list[str] = field(default_factory=list)  # this episode's, oldest first
    looked: set[str] = field(default_factory=set)  # places looked around for that

    def __post_init__(self) -> None:
        self.mentions = Mentions(self.semantics)
        self._known = frozenset(n.lower() for n in self.semantics.known_names())

    def start(self, observation: str, admissible: list[str]) -> None:
        """Take in the episode's first observation."""
        self.mentions.observe("", observation)
        self.place = _place_of(self.semantics, observation) or self.place
        # the task's own values are names to recognise in actions ("eat meal"), even
        # where the environment never lists them as seen
        self.mentions.add([v for v in self.binding.values() if v])
        self.last_obs = observation
        self._offered(admissible)
        self._note_seen("", observation)

    # -- the pointer ----------------------------------------------------------

    @property
    def steps(self) -> list[ProgramStep]:
        return self.program.steps

    @property
    def finished(self) -> bool:
        return self.ptr >= len(self.steps)

    @property
    def current(self) -> ProgramStep | None:
        return None if self.finished else self.steps[self.ptr]

    @property
    def slot_of_type(self) -> dict[str, str]:
        return {normalize(v): k for k, v in self.binding.items()}

    def move_to(self, idx: int) -> None:
        """Point at step ``idx`` with fresh failure and stall counts."""
        self.ptr, self.fails, self.on_step = idx, 0, 0

    def restart(self) -> None:
        """Run the program once more from its first step, keeping what the episode learned."""
        self.retried = True
        self.move_to(0)
        self.tried_places.clear()
        self.bad.clear()
        self.bad_forms.clear()
        self.roaming.clear()
        self.deferred.clear()
        self.sought.clear()

    # -- grounding ------------------------------------------------------------

    def abstract(self, action: str, literal: bool = False) -> tuple[str, dict[str, str]]:
        return abstract(
            action, self.mentions, place=self.place, slot_of_type=self.slot_of_type, literal=literal
        )

    def ground(self, idx: int, *, anywhere: bool = False) -> list[tuple[float, str]]:
        """Admissible actions that carry out program step ``idx`` here, best first.

        ``anywhere``: skip the check that this is the step's place (a search asks
        whether the step could be done where it stands).
        """
        if idx >= len(self.steps) or self.steps[idx].op not in ("act", "read"):
            return []
        st = self.steps[idx]
        action = str(st.action)
        if st.op == "read":
            return self._ground_read(action)
        literal = not self.program.generalized
        if (
            not anywhere
            and "{@}" in action
            and not self.at_place(st.at)
            and idx not in self.roaming
        ):
            return []  # the step acts on a place: it must be the right one
        # a value that was to be read but could not be stands for anything
        pattern = re.sub(
            r"\{(" + READ_PREFIX + r"\d+)\}",
            lambda m: m.group(0) if self.binding.get(m.group(1)) else "<*>",
            action,
        )
        # an answer is given only on exactly the thing the step names: a reworded or
        # near one ("focus on agent" for "focus on <bear>") is a wrong answer
        commits = _commits(self.semantics, action)
        if commits and "<*>" in pattern:
            # what to answer differed between the episodes it was learned from (or was
            # to be read and could not be): a question, not a match for anything
            return []
        out: list[tuple[float, str]] = []
        for a in self.admissible:
            if a in self.bad[idx]:
                continue
            abs_a, used = self.abstract(a, literal)
            if any(used.get(s) in self.used[(action, s)] for s in st.distinct):
                continue
            if abs_a in self.bad_forms[idx]:
                continue
            if matches(abs_a, pattern):
                out.append((1.0, a))
            elif (
                self.config.rank
                and not commits
                and verb(abs_a) == verb(pattern)
                and slots_in(abs_a) == slots_in(pattern)
                and same_entities(abs_a, pattern)
            ):
                # ranked, inexact: same verb, slots, place and things; the rest of the
                # wording may differ (another verb is another action: heat is no cool)
                sim = similarity(abs_a, pattern)
                if sim >= self.config.rank_threshold:
                    out.append((sim, a))
        return _best_first(out)

    def free_choices(self) -> list[str]:
        """The admissible actions an LLM taking over may pick: an action that commits to
        an answer only where the program gives it (its current step grounds to it, or
        asks for an answer here). A committed answer cannot be taken back ("focus on
        metal pot" while the program seeks the lead ends the episode at -100), so the
        hand-over explores and leaves the answers to the program."""
        allowed = {a for _, a in self.ground(self.ptr, anywhere=True)} | set(self.answers_here())
        return [
            a for a in self.admissible if a and (a in allowed or not _commits(self.semantics, a))
        ]

    def answers_here(self) -> list[str]:
        """Where the current step commits to an answer it could not ground: the
        admissible actions of its kind on the things here (not the map's places nor the
        doors to them), for the LLM to choose from. Empty for any other step."""
        st = self.current
        if st is None or st.op != "act" or not _commits(self.semantics, str(st.action)):
            return []
        named = re.sub(r"\{(\w+)\}", lambda m: self.binding.get(m.group(1)) or "<*>", st.action)
        if "<" not in named:
            # the task names the answer's thing (focus on the lead): it is that or
            # nothing, wherever the thing turns out to be
            return []
        places = [p.lower() for p in self.semantics.known_names()]
        kind = verb(str(st.action))
        out = []
        for a in self.admissible:
            thing = (self.semantics.location(a) or "").lower()
            if (
                verb(a) == kind
                and thing
                and a not in self.bad[self.ptr]
                and not any(re.search(rf"\b{re.escape(p)}\b", thing) for p in places)
            ):
                out.append(a)
        return out

    def _ground_read(self, action: str) -> list[tuple[float, str]]:
        # what is read is the same thing in every episode (the cookbook, the recipe)
        out = []
        for a in self.admissible:
            if a in self.bad[self.ptr]:
                continue
            sim = 1.0 if normalize(a) == action else similarity(normalize(a), action)
            if sim >= (self.config.rank_threshold if self.config.rank else 1.0):
                out.append((sim, a))
        return _best_first(out)

    def _choose(self, cands: list[tuple[float, str]], tiebreak: TieBreak | None) -> Decision:
        top = cands[0][0]
        best = [a for s, a in cands if s == top]
        # candidates that read the same once instances are abstracted (apple 1 / apple 2)
        # are interchangeable: only genuinely different actions are worth a question
        forms = {self.abstract(a)[0] for a in best}
        if len(best) > 1 and self.acted_words:
            if not any(map(self._relevance, best)) and (look := self._look()) is not None:
                # what each holds is not known here yet: one look tells them apart
                return Decision(look, {"op": "reveal", "looked": True})
            best.sort(key=lambda a: -self._relevance(a))  # stable: the list's order next
        action, info, tokens = best[0], {}, (0, 0)
        if len(forms) > 1 and tiebreak is not None:
            action, info, tokens = tiebreak(self, best)
        if top < 1.0:
            info = {**info, "reworded": True}
        return Decision(action, info, tokens)

    def _look(self) -> str | None:
        look = look_action(self.semantics)
        if look is None or self.place is None or self.place in self.looked:
            return None
        self.looked.add(self.place)
        return look if look in self.admissible else None

    def _relevance(self, action: str) -> int:
        # how many words of what the episode acted on the action's things are described by
        return self._overlap(
            " ".join(self.described.get(n, "") for n in self.mentions.named(action))
        )

    def _overlap(self, text: str) -> int:
        return len(set(_WORD.findall(text)) & self.acted_words)

    # -- deciding the next action ---------------------------------------------

    def decide(self, tiebreak: TieBreak | None = None) -> Decision:
        for idx in sorted(self.deferred):
            cands = self.ground(idx)
            if cands:
                d = self._choose(cands, tiebreak)
                return Decision(
                    d.action, {"step": idx, "op": "act", "deferred": idx, **d.info}, d.tokens
                )
        for _ in range(len(self.steps) + 2):  # a few pointer moves without acting
            if self.finished:
                if self._seek_answer():
                    continue
                return Decision(None, {"stuck": "program finished without success"})
            st = self.steps[self.ptr]
            info: dict[str, Any] = {"step": self.ptr}
            if st.op == "find":
                what = str(st.what)
                if self.ground(self.ptr + 1, anywhere=True):
                    self.found_place[what] = self.place
                    self.move_to(self.ptr + 1)
                    continue
                act = self._reveal() or self._search(what)
                if act is None:
                    return Decision(
                        None, {**info, "stuck": f"nothing left to search for {{{what}}}"}
                    )
                return Decision(act, {**info, "op": "find"})
            cands = self.ground(self.ptr)
            if st.op == "read":
                if cands:
                    return Decision(cands[0][1], {**info, "op": "read"})
                # nothing to read here: the later steps take any value in its place
                self.move_to(self.ptr + 1)
                continue
            if cands:
                d = self._choose(cands, tiebreak)
                return Decision(d.action, {**info, "op": "act", **d.info}, d.tokens)
            if self._seek_answer():
                continue
            if self._way_open(str(st.action)):
                # the way the step opens is open already (opened on an earlier walk)
                self.move_to(self.ptr + 1)
                continue
            if self.at_place(st.at):
                act = self._reveal()
                if act is not None:
                    return Decision(act, {**info, "op": "reveal"})
                if self.ground(self.ptr + 1) and self.ptr not in self.sought:
                    # the next step can already be done: this one was not needed here,
                    # or (on the task's own things) not yet
                    if slots_in(str(st.action)) - {"{@}"}:
                        self.deferred.add(self.ptr)
                    self.move_to(self.ptr + 1)
                    continue
            # a question (what to answer is not known) where its answers are: for the
            # LLM here, not a search elsewhere
            question = (st.at is None or self.at_place(st.at)) and self.answers_here()
            act = None if question else self._goto(st.at) or self._roam(st)
            if act is None:
                stuck = f"cannot carry out: {fill(str(st.action), self.binding)}"
                return Decision(None, {**info, "stuck": stuck})
            return Decision(act, {**info, "op": "goto"})
        return Decision(None, {"stuck": "no progress"})

    def _nav_targets(self) -> list[tuple[str, str]]:
        sem = self.semantics
        out = []
        for a in self.admissible:
            if sem.is_navigation(a):
                loc = sem.location(a)
                if loc and normalize(loc) != self.place and self._is_place(normalize(loc)):
                    out.append((normalize(loc), a))
        return out

    def _is_place(self, name: str) -> bool:
        # where the environment declares its places, a way to anything else is another
        # name for one of them ("go to art studio door")
        return not self._known or name in self._known

    def _reveal(self) -> str | None:
        if self.place is None or self.place in self.revealed:
            return None
        for a in self.admissible:
            if self.abstract(a)[0] in self.reveal:
                return a
        return None

    def at_place(self, at: str | None) -> bool:
        """Whether the skill stands where a step with place ``at`` is done."""
        if at in (None, "*"):
            return True
        if self.place is None:
            return False
        if at.startswith("@"):
            return self.found_place.get(at[1:]) == self.place
        ptype = self.mentions.type_of(self.place)
        if at.startswith("{"):
            return ptype == normalize(self.binding.get(at[1:-1], ""))
        return ptype == at.strip("<>")

    def _goto(self, at: str | None) -> str | None:
        if at is None or at == "*":
            action = str(self.steps[self.ptr].action)
            slots = [s for s in self.binding if "{" + s + "}" in action]
            return self._search(slots[0] if slots else "", any_place=True)
        if at.startswith("@"):
            place = self.found_place.get(at[1:])
            for loc, a in self._nav_targets():
                if loc == place:
                    return a
            return self._search(at[1:])
        want = normalize(self.binding.get(at[1:-1], "")) if at.startswith("{") else at.strip("<>")
        tried = self.tried_places[self.ptr]
        fresh = [
            (loc, a)
            for loc, a in self._nav_targets()
            if self.mentions.type_of(loc) == want and loc not in tried
        ]
        if not fresh:
            # none next to here: the nearest one further away
            return self._way(lambda loc: self.mentions.type_of(loc) == want and loc not in tried)
        loc, a = fresh[0]
        tried.add(loc)
        return a

    def _roam(self, st: ProgramStep) -> str | None:
        """Search for the thing a step names once every place of its learned type is tried.

        A "<type>" place is only where the thing was found in training (the task never
        names it), so it is a first guess; the place of a task slot ({target}) is not.
        """
        at = st.at or ""
        if not (at.startswith("<") and at.endswith(">")):
            return None
        things = [t.strip("<>") for t in re.findall(r"<[^>]*>", str(st.action)) if t != "<*>"]
        if _commits(self.semantics, str(st.action)):
            # an answer on the task's own thing, which training found elsewhere ("focus
            # on lead" where the chocolate was in the kitchen): look for it everywhere
            things += [
                normalize(self.binding[s])
                for s in re.findall(r"\{(\w+)\}", str(st.action))
                if self.binding.get(s) and not s.startswith(READ_PREFIX)
            ]
        if not things:
            return None
        self.roaming.add(self.ptr)
        return self._search("", any_place=True, want=things[0])

    def _search(self, slot: str, *, any_place: bool = False, want: str | None = None) -> str | None:
        """Go to the most promising place not yet searched for ``slot``'s entity (or ``want``)."""
        want = want or normalize(self.binding.get(slot, ""))
        idx = self.ptr
        distinct: set[str] = set()
        nxt = self.steps[idx + 1] if idx + 1 < len(self.steps) else None
        if nxt is not None:
            for s in nxt.distinct:
                distinct |= self.used[(str(nxt.action), s)]
        targets = self._nav_targets()
        tried = self.tried_places[idx]

        def go(loc: str, a: str) -> str:
            tried.add(loc)
            return a

        if self.retried:
            # a second pass goes back to where the first one found it
            back = self.found_place.get(slot)
            for loc, a in targets:
                if back and loc == back and loc not in tried:
                    return go(loc, a)
        # where this episode has already seen one (certain, so first)
        for inst, place in self.seen_at.items():
            if place and inst not in distinct and self.mentions.type_of(inst) == want:
                for loc, a in targets:
                    if loc == place and loc not in tried:
                        return go(loc, a)
        best: tuple[float, int, str, str] | None = None
        for order, (loc, a) in enumerate(targets):
            if loc in tried or (loc in self.searched and not any_place):
                continue
            ptype = self.mentions.type_of(loc)
            score = (
                self.priors.score(want, ptype) / self.priors.cost(ptype)
                if self.config.priors
                else 0.0
            )
            cand = (score, -order, loc, a)
            if best is None or cand > best:
                best = cand
        if best is not None:
            return go(best[2], best[3])
        # every place next to here is searched: walk on to the nearest one that is not
        # (this one is looked at by now)
        if self.place:
            tried.add(self.place)
        return self._way(lambda loc: loc not in tried and (any_place or loc not in self.searched))

    def _seek_answer(self) -> bool:
        """Go back to an answer put off until its thing showed, where the program cannot
        go on without it (or has ended): the rest counts for nothing without the answer,
        so its thing is searched for now, and the answer not put off again."""
        steps = self.steps
        idx = next(
            (
                i
                for i in sorted(self.deferred)
                if i < self.ptr and _commits(self.semantics, str(steps[i].action))
            ),
            None,
        )
        if idx is None:
            return False
        self.deferred.discard(idx)
        self.sought.add(idx)
        self.move_to(idx)
        return True

    def _way_open(self, action: str) -> bool:
        """Whether ``action`` opens a way this episode has seen opened: a door it once
        offered to open, to a place now walked to from there."""
        for here, doors in self.doors.items():
            for to, a in doors.items():
                if to in self.ways.get(here, {}) and matches(self.abstract(a)[0], action):
                    return True
        # a step on nothing but a place this episode stands in or has been in ("open
        # <workshop>" learned on a walk from the hallway, in a variation that starts in
        # the workshop): the way there is no longer needed
        things = re.findall(r"<([^<>*]+)>", action)
        if len(things) == 1 and re.sub(r"<[^<>]+>", "", action).strip() == verb(action):
            return things[0] in self._known and (things[0] == self.place or things[0] in self.ways)
        return False

    def _way(self, goal: Callable[[str], bool]) -> str | None:
        """The first move toward the nearest place ``goal`` accepts, over the ways this
        episode has seen: those it walked and the doors not opened yet."""
        if self.place is None:
            return None
        first: dict[str, str] = {}
        seen, queue = {self.place}, deque([self.place])
        while queue:
            here = queue.popleft()
            walked = self.ways.get(here, {})
            hops = list(walked.items())
            hops += [(to, a) for to, a in self.doors.get(here, {}).items() if to not in walked]
            for to, a in hops:
                if to in seen:
                    continue
                seen.add(to)
                first[to] = first.get(here, a)
                if goal(to):
                    return first[to]
                queue.append(to)
        return None

    # -- after the environment answered -----------------------------------------

    def _offered(self, admissible: list[str]) -> None:
        # what the admissible actions act on is here too, named as the environment
        # accepts it ("door to hallway"), where an observation may say it otherwise
        self.admissible = admissible
        sem = self.semantics
        self.mentions.add(sem.location(a) for a in admissible)
        if self.place is None:
            return
        for a in admissible:
            nav = sem.is_navigation(a)
            to = sem.location(a) if nav else _ask(sem, "way_to", a, None)
            to = normalize(to) if to else None
            if to and to != self.place and self._is_place(to):
                (self.ways if nav else self.doors)[self.place][to] = a

    def _note_seen(self, action: str, obs: str) -> list[str]:
        seen = self.mentions.observe(action, obs)
        if obs:
            self.observations.append(obs)
        for said in _BRACKETED.finditer(obs.lower()):
            named = self.mentions.find(said.group(1))
            if named and named[-1][1] == len(said.group(1)):
                self.described[named[-1][2]] = said.group(2)
        for name in seen:
            if name != self.place:
                self.seen_at[name] = self.place
                if self.place:
                    self.contents[self.place].add(self.mentions.type_of(name))
        return seen

    def _searching(self, searched_before: int) -> None:
        # a search that looked at one more place is making progress, not stalling: the
        # stall count restarts (an LLM handed a long search loops on what it sees)
        st = self.current
        if st is not None and st.op == "find" and len(self.searched) > searched_before:
            self.on_step = 0

    def observe(
        self, action: str, obs: str, admissible: list[str], step_info: dict[str, Any]
    ) -> None:
        """Track what ``action`` did; advance when it carried out the current step.

        ``step_info`` is the step's record: what the decision said (its ``op``) on the
        way in, what was read on the way out.
        """
        sem = self.semantics
        failed = sem.failed(action, obs)
        moved = sem.is_navigation(action) and not failed
        here = _place_of(sem, obs) or (sem.location(action) if moved else None)
        if moved or here:
            self.place = normalize(here) if here else None
        self._offered(admissible)
        self.on_step += 1
        searched = len(self.searched)
        if moved:
            self._note_seen(action, obs)
            # a place with nothing to open has been fully looked at on arrival
            if self.place and self._reveal() is None:
                self.searched.add(self.place)
            self.last_obs = obs
            self._searching(searched)
            return
        op = step_info.get("op")
        if op == "reveal" or (op == "find" and not failed and not sem.is_navigation(action)):
            if self.place:
                self.revealed.add(self.place)
                self.searched.add(self.place)
            self._note_seen(action, obs)
            self.last_obs = obs
            self._searching(searched)
            return
        self._note_seen(action, obs)
        changed = obs.strip() != self.last_obs.strip()
        self.last_obs = obs
        late = step_info.get("deferred")
        if late is not None:
            idx = int(late)
            if self._confirmed(action, str(self.steps[idx].action), failed, changed):
                self.deferred.discard(idx)
            else:
                self.bad[idx].add(action)
            return
        st = self.current
        if st is None:
            return
        if op == "read":
            # what is not in sight here may have been earlier in the episode (the plant
            # in the greenhouse, read once the program is in the hallway); of several,
            # the one the episode acted on (the pot it took holds the apple tree)
            values = [
                v
                for o in (obs, *reversed(self.observations))
                for v in read_values(o, st.before, st.after)
            ]
            value = max(values, key=self._overlap, default=None)
            if value:
                self.binding[str(st.slot)] = value
                self.mentions.add([value])
                step_info["read"] = {st.slot: value}
            self.move_to(self.ptr + 1)
            return
        if st.op != "act":
            return
        action_t = str(st.action)
        if op != "act" and not matches(self.abstract(action)[0], action_t):
            return  # someone else (the LLM) acted, and not on this step
        if self._confirmed(action, action_t, failed, changed):
            self.move_to(self.ptr + 1)
        else:
            self.fails += 1
            self.bad[self.ptr].add(action)
            if step_info.get("reworded"):
                self.bad_forms[self.ptr].add(self.abstract(action)[0])

    def _confirmed(self, action: str, action_t: str, failed: bool, changed: bool) -> bool:
        """Whether ``action`` carried out the step ``action_t`` (noting what it used)."""
        if self.config.confirm and (failed or not changed):
            return False
        form, used = self.abstract(action)
        literal = set(_WORD.findall(form))
        self.acted_words |= {w for w in _WORD.findall(normalize(action)) if w not in literal}
        for s, inst in used.items():
            self.used[(action_t, s)].add(inst)
            self.seen_at.pop(inst, None)  # it moved with us
        return True


_WORD = re.compile(r"[a-z]+")
# a name and what the environment says of it in brackets right after it
_BRACKETED = re.compile(r"([^\n\t(),]+?) \(([^()]*)\)")


def _ask(semantics: ActionSemantics, method: str, arg: str, default: Any) -> Any:
    # semantics written before the protocol had ``method`` answer ``default`` (they commit
    # to nothing, never say where the agent is, open no way)
    check = getattr(semantics, method, None)
    return check(arg) if check is not None else default


def _place_of(semantics: ActionSemantics, observation: str) -> str | None:
    return _ask(semantics, "place_of", observation, None)


def _commits(semantics: ActionSemantics, action: str) -> bool:
    return bool(_ask(semantics, "is_irreversible", action, False))


def _best_first(scored: list[tuple[float, str]]) -> list[tuple[float, str]]:
    return sorted(scored, key=lambda x: (-x[0], x[1]))
