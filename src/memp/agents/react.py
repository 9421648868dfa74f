"""The ReAct agent: an LLM acting in an environment, reading procedures from memory.

One prompt per environment family (household, science, cooking, travel, generic),
each with a single worked example. Retrieved procedures are injected as guidelines
(``Memory.render``). Small models answer in many shapes ("> go to desk 1",
"Action: open fridge.", quoted actions): :func:`parse_action` takes them all, and
:func:`map_action` snaps the result onto the admissible list (exact, normalised,
then nearest by token overlap). With an admissible list and a backend that supports
``choices=``, the answer is constrained to it by grammar.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

from memp.agents.base import end_reason, episode_trajectory
from memp.envs.base import Env
from memp.llm.base import LLM, Message
from memp.types import RetrievalHit, Step, Trajectory

SYSTEM = """You are an agent acting in a text environment to complete a task.
Each turn you see the latest observation and answer with exactly one action, written as
`Action: <action>` on a single line. Use the environment's own words for objects and
places. Follow the guidelines from memory when they fit the task; do not repeat an action
that did not change anything."""

EXAMPLES: dict[str, str] = {
    "household": """Task: put a clean mug in the coffee machine.
Observation: You are in the middle of a room. You see a cabinet 1, a countertop 1, a sinkbasin 1 and a coffeemachine 1.
Action: go to countertop 1
Observation: On the countertop 1, you see a mug 1 and a knife 1.
Action: take mug 1 from countertop 1
Observation: You pick up the mug 1 from the countertop 1.
Action: go to sinkbasin 1
Observation: On the sinkbasin 1, you see nothing.
Action: clean mug 1 with sinkbasin 1
Observation: You clean the mug 1 using the sinkbasin 1.
Action: go to coffeemachine 1
Observation: On the coffeemachine 1, you see nothing.
Action: move mug 1 to coffeemachine 1""",
    "science": """Task: Your task is to boil water. First, focus on the substance. Then, take actions that will cause it to change its state of matter.
Observation: This room is called the kitchen. In it, you see: a sink, a stove, a cupboard (closed), a metal pot.
Action: move metal pot to sink
Observation: You move the metal pot to the sink.
Action: activate sink
Observation: The sink is now activated. The metal pot is filled with water.
Action: deactivate sink
Observation: The sink is now deactivated.
Action: focus on water
Observation: You focus on the water.
Action: move metal pot to stove
Observation: You move the metal pot to the stove.
Action: activate stove
Observation: The stove is now activated.
Action: wait
Observation: The water boils and turns into steam.
(Focusing on the wrong object ends the task with a failure: focus only on what the task names.)""",
    "cooking": """Task: You are hungry! Let's cook a delicious meal. Check the cookbook in the kitchen for the recipe. Once done, enjoy your meal!
Observation: You are in the kitchen. You see a counter that has a knife, a red apple and a cookbook on it. There is also an oven.
Action: read cookbook
Observation: Ingredients: red apple. Directions: slice the red apple, roast the red apple, prepare meal.
Action: take red apple
Observation: You take the red apple.
Action: take knife
Observation: You take the knife.
Action: slice red apple
Observation: You slice the red apple.
Action: cook red apple in oven
Observation: You roast the red apple.
Action: prepare meal
Observation: Adding the meal to your inventory.
Action: eat meal
Observation: You eat the meal. It is delicious.""",
    "travel": """Task: Plan a 3-day trip from Ithaca to Charlotte from March 8th to March 10th, 2022, for one person with a budget of $1,200.
Action: FlightSearch[Ithaca, Charlotte, 2022-03-08]
Observation: Flight Number: F3633413, Price: 120, DepTime: 05:38, ArrTime: 07:46 ...
Action: NotebookWrite[Flights from Ithaca to Charlotte on 2022-03-08]
Observation: The information has been recorded in Notebook, and its index is 0.
Action: AccommodationSearch[Charlotte]
Observation: NAME: Cozy room near downtown, price: 90, room type: Private room, minimum nights: 1 ...
Action: NotebookWrite[Accommodations in Charlotte]
Observation: The information has been recorded in Notebook, and its index is 1.
Action: RestaurantSearch[Charlotte]
Action: AttractionSearch[Charlotte]
Action: FlightSearch[Charlotte, Ithaca, 2022-03-10]
Action: Planner[Day 1:
Current City: from Ithaca to Charlotte
Transportation: Flight Number: F3633413, from Ithaca to Charlotte, Departure Time: 05:38, Arrival Time: 07:46
Breakfast: Nagaland's Kitchen, Charlotte
Attraction: The Mint Museum, Charlotte;
Lunch: Cafe Maple Street, Charlotte
Dinner: Bombay Vada Pav, Charlotte
Accommodation: Cozy room near downtown, Charlotte
(... one block per day; '-' where nothing is needed ...)]""",
    "generic": """Task: open the box and take the key.
Observation: You are in a small room. There is a closed box on the table.
Action: open box
Observation: You open the box. Inside is a key.
Action: take key
Observation: You take the key.""",
}

# -- parsing and mapping -------------------------------------------------------------

_PREFIX = re.compile(
    r"^\s*(?:>+\s*|[-*•]\s+|\d+[.)]\s+|(?:next\s+)?action\s*\d*\s*[:=]\s*|act\s*:\s*|command\s*:\s*)+",
    re.I,
)
_THOUGHT = re.compile(r"^\s*(?:thought|think|reasoning)\s*\d*\s*:", re.I)
_ACTION_LINE = re.compile(r"^\s*(?:>\s*)?(?:next\s+)?action\s*\d*\s*[:=]\s*(?P<rest>.*)$", re.I)
_TOOL_START = re.compile(r"[A-Za-z]+\[")
_QUOTES = "\"'`“”‘’"


def _strip_action(text: str) -> str:
    text = text.strip()
    for _ in range(3):  # prefixes and quotes can nest: "> Action: `go to x`."
        text = _PREFIX.sub("", text).strip()
        text = text.strip(_QUOTES).strip()
        if not text.endswith("]"):
            text = text.rstrip(".!?;,").strip().strip(_QUOTES).strip()
    return re.sub(r"[ \t]+", " ", text)


def parse_action(text: str) -> tuple[str | None, str]:
    """Split a model answer into ``(thought, action)``, tolerant of small-model quirks."""
    text = text.replace("\r\n", "\n").strip()
    lines = text.split("\n")
    thought_lines: list[str] = []
    for i, line in enumerate(lines):
        m = _ACTION_LINE.match(line)
        if m:
            rest = "\n".join([m.group("rest"), *lines[i + 1 :]])
            thought = _THOUGHT.sub("", "\n".join(thought_lines)).strip() or None
            return thought, _take_action(rest)
        thought_lines.append(line)
    # No "Action:" label: the first line that is not a thought is the action.
    for i, line in enumerate(lines):
        if line.strip() and not _THOUGHT.match(line):
            thought = "\n".join(lines[:i]).strip() or None
            if thought:
                thought = _THOUGHT.sub("", thought).strip() or None
            return thought, _take_action("\n".join(lines[i:]))
    return (_THOUGHT.sub("", text).strip() or None), ""


def _take_action(rest: str) -> str:
    rest = rest.strip()
    m = _TOOL_START.search(rest)
    if m and m.start() <= 4:
        # A tool call may span lines (a whole travel plan): keep up to the matching "]".
        depth, end = 0, None
        for j in range(m.end() - 1, len(rest)):
            if rest[j] == "[":
                depth += 1
            elif rest[j] == "]":
                depth -= 1
                if depth == 0:
                    end = j + 1
                    break
        body = rest[m.start() : end] if end else rest[m.start() :].rstrip() + "]"
        return body.strip()
    first = rest.split("\n", 1)[0] if rest else ""
    return _strip_action(first)


def normalize(action: str) -> str:
    a = action.lower().strip().strip(_QUOTES)
    a = re.sub(r"[^\w\s/-]", " ", a)
    a = re.sub(r"\b(?:the|a|an)\b", " ", a)
    return re.sub(r"\s+", " ", a).strip()


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def map_action(action: str, admissible: Sequence[str] | None) -> tuple[str, str]:
    """Snap ``action`` onto ``admissible``; returns ``(action, how)``.

    ``how`` is ``exact``, ``normalized``, ``nearest`` or ``free`` (no list / no match).
    """
    if not admissible:
        return action, "free"
    if action in admissible:
        return action, "exact"
    norm = normalize(action)
    for a in admissible:
        if normalize(a) == norm:
            return a, "normalized"
    want = Counter(_tokens(action))
    if not want:
        return action, "free"
    best, best_key = None, (0.0, 0.0)
    for a in admissible:
        have = Counter(_tokens(a))
        overlap = sum((want & have).values())
        if overlap == 0:
            continue
        # Token-overlap F1 first; character similarity breaks ties (open door vs open drawer).
        f1 = 2 * overlap / (sum(want.values()) + sum(have.values()))
        key = (f1, SequenceMatcher(None, norm, normalize(a)).ratio())
        if key > best_key:
            best, best_key = a, key
    if best is None:
        return action, "free"
    return best, "nearest"


def detect_loop(actions: Sequence[str], *, repeats: int = 3, max_period: int = 3) -> bool:
    """True when the last actions are one short cycle repeated ``repeats`` times."""
    for period in range(1, max_period + 1):
        need = period * repeats
        if len(actions) < need:
            continue
        tail = list(actions[-need:])
        cycle = tail[:period]
        if all(tail[i] == cycle[i % period] for i in range(need)):
            return True
    return False


# -- the agent ---------------------------------------------------------------------


class ReActAgent:
    """An LLM agent with procedural-memory hooks.

    ``memory``: a :class:`memp.memory.Memory` (or anything with ``retrieve`` and
    ``render``); procedures retrieved for the task are shown as guidelines and their
    ids recorded in ``trajectory.metadata["retrieved"]``. ``retrieve_options`` go to
    ``memory.retrieve`` (default: ``k=3`` restricted to the environment's name).
    ``use_choices``: constrain the answer to the admissible actions when the
    environment lists them. ``history``: how many past steps the prompt shows.
    ``loop_repeats``: a cycle of up to 3 actions repeated this many times is a loop;
    a loop never ends the episode (only the step budget does): each one found withholds
    its actions from the choices for one step. ``exclude_noops``: leave actions the
    environment calls no-ops (look, examine, inventory) out of the choices; small
    models otherwise dwell on them.

    The prompt is laid out for the prefix cache: the system part, the task and the
    first observation with every action available then, and each past step as an
    assistant turn (the action as decoded) and a user turn (its observation and the
    actions that became available with it). A step appends turns and never rewrites
    what came before, so a call evaluates only the new observation
    (``list_admissible="new"``; ``"all"`` lists every admissible action in the last
    turn instead, re-evaluated each step: ``bench/react_prompt.py`` compares them). A
    list longer than ``max_listed`` (ScienceWorld admits thousands) is not written
    out; the choice is still constrained to it. The
    worked example is the environment's own
    (``env.worked_example(task)``: an expert episode of the training split, in the
    game's grammar) where it has one, else the family's built-in example.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        memory: Any = None,
        retrieve_options: dict[str, Any] | None = None,
        max_steps: int = 30,
        use_choices: bool = True,
        history: int = 40,
        list_admissible: str = "new",
        max_listed: int = 200,
        loop_repeats: int = 3,
        exclude_noops: bool = True,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        system_prompt: str | None = None,
        examples: dict[str, str] | None = None,
    ) -> None:
        self.llm = llm
        self.memory = memory
        self.retrieve_options = dict(retrieve_options or {})
        self.max_steps = max_steps
        self.use_choices = use_choices
        self.history = history
        if list_admissible not in ("new", "all", "none"):
            from memp.errors import UnknownOption

            raise UnknownOption("list_admissible", str(list_admissible), ("new", "all", "none"))
        self.list_admissible = list_admissible
        self.max_listed = max_listed
        self.loop_repeats = loop_repeats
        self.exclude_noops = exclude_noops
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self.system_prompt = system_prompt or SYSTEM
        self.custom_examples = dict(examples or {})
        self.examples = {**EXAMPLES, **self.custom_examples}

    # -- memory -------------------------------------------------------------------
    def retrieve(self, env: Env, task: str) -> list[RetrievalHit]:
        if self.memory is None:
            return []
        opts = {"k": 3, "environment": env.name, **self.retrieve_options}
        return list(self.memory.retrieve(task, **opts))

    # -- prompt -------------------------------------------------------------------
    def system_message(self, env: Env, guidelines: str) -> str:
        family = getattr(env, "family", "generic")
        parts = [self.system_prompt]
        extra = getattr(env, "instructions", None)
        if extra:
            parts.append(str(extra).strip())
        example = self.examples.get(family) or self.examples["generic"]
        own = getattr(env, "worked_example", None)
        if callable(own) and family not in (self.custom_examples or {}):
            example = own(getattr(env, "task", "") or "") or example
        parts.append("Example of a solved task:\n" + example)
        if guidelines.strip():
            parts.append(guidelines.strip())
        return "\n\n".join(parts)

    def messages(
        self,
        system: str,
        task: str,
        first_observation: str,
        steps: Sequence[Step],
        admissible: Sequence[str] | None,
        offered: Sequence[Sequence[str] | None] = (),
    ) -> list[Message]:
        """The conversation for the next call: the task and the first observation, then
        one assistant turn per past action and one user turn with what it led to.

        ``offered[i]``: the actions available before step ``i`` (``offered[len(steps)]``
        now); each user turn lists the ones that became available with it
        (``list_admissible="new"``). The action the model answered with stays in the
        conversation as it was decoded, so the next call's prefix is the previous
        call's prompt and answer: only the new observation is evaluated.
        """
        new_mode = self.list_admissible == "new" and len(offered) == len(steps) + 1
        first = [f"Task: {task}", f"Observation: {first_observation.strip()}"]
        if new_mode and offered[0] and len(offered[0]) <= self.max_listed:
            first.append("Available actions: " + "; ".join(offered[0]))
        start = self.history_start(len(steps)) if self.history else len(steps)
        if start:
            first.append(f"({start} earlier steps omitted)")
        out: list[Message] = [
            {"role": "system", "content": system},
            {"role": "user", "content": "\n".join(first)},
        ]
        for i in range(start, len(steps)):
            s = steps[i]
            said = s.info.get("said") or f"Action: {s.action}"
            turn = [f"Observation: {s.observation.strip()}"]
            if new_mode:
                before = set(offered[i] or ())
                fresh = [a for a in offered[i + 1] or () if a not in before]
                if fresh and len(fresh) <= self.max_listed:
                    turn.append("New actions: " + "; ".join(fresh))
            out.append({"role": "assistant", "content": said})
            out.append({"role": "user", "content": "\n".join(turn)})
        if self.list_admissible == "all" and admissible and len(admissible) <= self.max_listed:
            # the whole list, in the last turn only (re-evaluated every call)
            out[-1] = {
                "role": "user",
                "content": out[-1]["content"] + "\nAvailable actions: " + "; ".join(admissible),
            }
        return out

    def history_start(self, n_steps: int) -> int:
        """First step shown: the window slides in chunks of half its size, so the
        prompt prefix stays the same for several steps (the KV cache reuses it)."""
        excess = n_steps - self.history
        if excess <= 0:
            return 0
        chunk = max(1, self.history // 2)
        return -(-excess // chunk) * chunk

    def _noop(self, env: Env, action: str) -> bool:
        return self.exclude_noops and env.semantics.is_noop(action)

    # -- episode ------------------------------------------------------------------
    def run(self, env: Env, episode: int) -> Trajectory:
        obs, info = env.reset(episode=episode)
        first_obs = obs  # the starting view (e.g. the room's receptacles) stays in every prompt
        task = info.get("task") or env.task
        hits = self.retrieve(env, task)
        guidelines = self.memory.render(hits) if (self.memory is not None and hits) else ""
        system = self.system_message(env, guidelines)
        max_tokens = self.max_tokens or int(getattr(env, "max_action_tokens", 48))
        steps: list[Step] = []
        banned: set[str] = set()
        loops = 0
        stopped = "max_steps"
        offered: list[list[str] | None] = []
        won = bool(info.get("won", False))
        total_reward = 0.0
        admissible = info.get("admissible")

        for _ in range(self.max_steps):
            offered.append(
                [a for a in admissible if not self._noop(env, a)] if admissible else None
            )
            messages = self.messages(system, task, first_obs, steps, admissible, offered)
            choices = None
            if self.use_choices and admissible:
                choices = [a for a in admissible if a not in banned and not self._noop(env, a)]
                choices = choices or list(admissible)
            t0 = time.perf_counter()
            comp = self.llm.complete(
                messages,
                max_tokens=max_tokens,
                temperature=self.temperature,
                stop=None if choices else ["\nObservation", "\nTask:"],
                seed=self.seed,
                choices=choices,
            )
            latency = comp.latency_s or (time.perf_counter() - t0)
            banned.clear()
            if choices:
                thought, raw_action = None, comp.text.strip()
            else:
                thought, raw_action = parse_action(comp.text)
            action, how = map_action(raw_action, admissible)
            valid = admissible is None or action in admissible
            info_step = {"raw": comp.text, "mapped": how, "valid": valid, "cached": comp.cached}
            if choices and action == raw_action:
                # the assistant turn as decoded (the bare action): the next prompt then
                # starts with this call's prompt and answer, all in the KV cache
                info_step["said"] = action
            next_obs, reward, terminated, truncated, info = env.step(action or "look")
            total_reward += float(reward)
            steps.append(
                Step(
                    thought=thought,
                    action=action,
                    observation=next_obs,
                    reward=float(reward),
                    prompt_tokens=comp.prompt_tokens,
                    completion_tokens=comp.completion_tokens,
                    latency_s=latency,
                    actor="llm",
                    info=info_step,
                )
            )
            admissible = info.get("admissible")
            won = bool(info.get("won", False))
            if terminated or truncated:
                stopped = end_reason(won, truncated)
                break
            if detect_loop([s.action for s in steps], repeats=self.loop_repeats):
                loops += 1
                banned = {s.action for s in steps[-3:]}

        return episode_trajectory(
            env,
            episode,
            "react",
            task=task,
            steps=steps,
            won=won,
            reward=total_reward,
            model=getattr(self.llm, "name", None),
            retrieved=[h.procedure.id for h in hits],
            retrieved_scores=[round(float(h.score), 4) for h in hits],
            stopped=stopped,
            loops=loops,
            score=float(info.get("score", 0.0)),
        )
