"""ScienceWorld (Wang et al., 2022): 30 science tasks, official train/dev/test variations.

Episodes of a split are the (task, variation) pairs of that split, ordered round-robin
over tasks (episode 0..29 are the first variation of each of the 30 tasks), so a small
``n`` already covers every task. The expert is the simulator's gold path.

Facts the agent must know: a ``focus on X`` that names the wrong object ends the
episode with score -100; the episode is won when the score reaches 100.
"""

from __future__ import annotations

import math
import re
from typing import Any

from memp.envs import require
from memp.envs.base import Env, int_option, names_option
from memp.envs.textgame import JavaNotFound, RegexSemantics, dedupe, find_java
from memp.errors import InvalidInput, UnknownOption, check_choice

SPLITS = {"train": "train", "dev": "dev", "valid": "dev", "validation": "dev", "test": "test"}


SEMANTICS = RegexSemantics(
    navigation=[r"go to\b", r"teleport to\b"],
    # the task's answer: focusing on the wrong thing ends the episode at -100
    irreversible=[r"focus on\b"],
    noop=[r"look\b", r"inventory\b", r"task\b", r"examine\b", r"read\b"],
    failure=[
        "No known action matches that input",
        "not open",
        "can't",
        "cannot",
        "I'm not sure",
        "not a valid",
        "nothing happens",
        "is not here",
        "There is no",
    ],
    target=[
        r"^(?:move|put|pour|dunk|mix)\b.*?\b(?:to|in|into|on)\s+(?P<loc>.+)$",
        # "go to door to kitchen" (how the simulator lists a way through a door) arrives
        # in the kitchen
        r"^(?:go to|teleport to)\s+(?:door to\s+)?(?P<loc>.+)$",
        r"^use\s+.+?\s+on\s+(?P<loc>.+)$",
        r"^(?:open|close|activate|deactivate|look at|look in|examine|pick up|focus on|use|eat|"
        r"read|wait)\s+(?P<loc>.+)$",
        r"^connect\s+.+?\s+to\s+(?P<loc>.+)$",
    ],
    seen=[r"^\s*\t?(?P<items>(?:a|an|the)\s+[^\n]+?)\s*$"],
    # the first observation, every "look around" and every move say which room this is
    here=r"\b(?:This (?:room|outside location) is called|You move to|You move through the "
    r"door to) the "
    r"(?P<loc>[^.\n]+)\.",
    # rooms are joined by doors, opened before the way through them is offered
    opens=[r"^open\s+door\s+to\s+(?P<loc>.+)$"],
    # moving into a room does not list it; this does, with what each thing holds
    look="look around",
    # "substance in metal pot", "cup containing water": a thing, where it is / what it holds
    qualifier=r"\s+(?:in|containing|on)\s+",
    # the map's locations (every task's world has these ten; doors connect them)
    places=(
        "art studio",
        "bathroom",
        "bedroom",
        "foundry",
        "greenhouse",
        "hallway",
        "kitchen",
        "living room",
        "outside",
        "workshop",
    ),
)


# The longest gold path of each task over its first three training variations, as
# measure_gold_lengths() gives them (a gold path's length varies from one load to the
# next: boiling waits for the water, so one variation gave 40 to 45 in five loads). A
# step budget from this table is the same for every episode of a task, every run.
GOLD_LENGTHS = {
    "boil": 50,
    "change-the-state-of-matter-of": 37,
    "chemistry-mix": 21,
    "chemistry-mix-paint-secondary-color": 27,
    "chemistry-mix-paint-tertiary-color": 33,
    "find-animal": 12,
    "find-living-thing": 12,
    "find-non-living-thing": 7,
    "find-plant": 12,
    "freeze": 37,
    "grow-fruit": 97,
    "grow-plant": 69,
    "identify-life-stages-1": 41,
    "identify-life-stages-2": 17,
    "inclined-plane-determine-angle": 57,
    "inclined-plane-friction-named-surfaces": 53,
    "inclined-plane-friction-unnamed-surfaces": 180,
    "lifespan-longest-lived": 8,
    "lifespan-longest-lived-then-shortest-lived": 9,
    "lifespan-shortest-lived": 8,
    "measure-melting-point-known-substance": 31,
    "measure-melting-point-unknown-substance": 94,
    "melt": 45,
    "mendelian-genetics-known-plant": 162,
    "mendelian-genetics-unknown-plant": 150,
    "power-component": 13,
    "power-component-renewable-vs-nonrenewable-energy": 28,
    "test-conductivity": 25,
    "test-conductivity-of-unknown-substances": 25,
    "use-thermometer": 22,
}


_PLACES = "|".join(re.escape(p) for p in sorted(SEMANTICS.known_names(), key=len, reverse=True))
_ROOM_DOOR = re.compile(rf"^((?:open|close) )({_PLACES}) door$")
_BARE_DOOR = re.compile(r"^((?:open|close) )door$")
_DOORS = re.compile(rf"\bA door to the ({_PLACES})\b")


def _door_to(action: str, only_door: str | None) -> str:
    """A door as the gold paths name it: "door to <room>" (``only_door``: the room the
    one door here leads to, None where there are several or none).

    The simulator lists a door by its shortest unambiguous name ("open door" where the
    room has one, "open bedroom door" beside others) and understands "open door to
    bedroom" everywhere; procedures learned in one room must read the same in another.
    """
    m = _ROOM_DOOR.match(action)
    if m:
        return f"{m.group(1)}door to {m.group(2)}"
    m = _BARE_DOOR.match(action)
    if m and only_door is not None:
        return f"{m.group(1)}door to {only_door}"
    return action


def spread(n: int) -> list[int]:
    """0..n-1 in an order whose every prefix spreads evenly over the range (van der
    Corput): 0, n/2, n/4, 3n/4, ..."""
    out: list[int] = []
    seen: set[int] = set()
    k = 0
    while len(out) < n:
        x, denom, q = 0.0, 1.0, k
        while q:
            denom *= 2
            x += (q & 1) / denom
            q >>= 1
        i = int(x * n)
        if i not in seen:
            seen.add(i)
            out.append(i)
        k += 1
    return out


def measure_gold_lengths(variations: int = 3) -> dict[str, list[int]]:
    """Gold path lengths of each task's first ``variations`` training variations (how
    GOLD_LENGTHS was made)."""
    env = ScienceWorldEnv("train")
    try:
        per: dict[str, list[int]] = {}
        for task, variation in env.episodes():
            lengths = per.setdefault(task, [])
            if len(lengths) < variations:
                env._load(task, variation, gold=True)
                lengths.append(len(env._sim.get_gold_action_sequence()))
        return per
    finally:
        env.close()


class ScienceWorldEnv(Env):
    """One split of ScienceWorld.

    Options: ``tasks`` (subset of task names, default all 30), ``simplifications``
    (e.g. ``"easy"``), ``step_limit`` (default 100; the simulator enforces it),
    ``budget`` (``"gold"``: each episode's step budget is ``budget_multiple`` times its
    task's gold length (:data:`GOLD_LENGTHS`), at least ``budget_min`` and at most
    ``step_limit``; tasks' gold paths run from 7 to 180 steps, so one budget for all
    starves the long ones; default: the run's max_steps). ``order``: which of a task's
    variations come first: ``"index"`` (the split's own order) or ``"spread"`` (evenly
    over the split: the first variations of a task share its parameters, the same
    substance, room or plant, so memory from the first five knows one of each).
    """

    name = "scienceworld"
    family = "science"
    semantics = SEMANTICS

    def __init__(
        self,
        split: str = "train",
        *,
        tasks: str | list[str] | None = None,
        simplifications: str = "",
        step_limit: int = 100,
        budget: str | None = None,
        budget_multiple: float = 2.0,
        budget_min: int = 20,
        order: str = "index",
    ) -> None:
        self.split = SPLITS[check_choice("scienceworld split", split, SPLITS)]
        self.order = check_choice("scienceworld order", order, ("index", "spread"))
        step_limit = int_option("step_limit", step_limit, minimum=1)
        if budget is not None:
            check_choice("scienceworld budget", budget, ("gold",))
        if not float(budget_multiple) > 0:
            raise InvalidInput(f"budget_multiple must be > 0, got {budget_multiple!r}")
        self.budget = budget
        self.budget_multiple = float(budget_multiple)
        self.budget_min = int_option("budget_min", budget_min, minimum=1)
        self.step_limit = step_limit
        sw = require("scienceworld", "scienceworld", why="the scienceworld environment needs it")
        if find_java() is None:
            raise JavaNotFound("ScienceWorld")
        self._sim = sw.ScienceWorldEnv("", envStepLimit=step_limit)
        names = list(self._sim.get_task_names())
        chosen = names_option(tasks)
        if chosen:
            for t in chosen:
                if t not in names:
                    raise UnknownOption("scienceworld task", t, names)
            names = chosen
        self.task_names = names
        self.simplifications = simplifications
        self._episodes: list[tuple[str, int]] | None = None
        self._last_info: dict[str, Any] = {}
        self._current: tuple[str, int] | None = None
        self._gold: list[str] | None = None
        self._taken: list[str] = []
        self._won = False

    # -- episodes -------------------------------------------------------------
    def episodes(self) -> list[tuple[str, int]]:
        if self._episodes is None:
            per_task: dict[str, list[int]] = {}
            for t in self.task_names:
                self._sim.load(t, 0, self.simplifications)
                getter = getattr(self._sim, f"get_variations_{self.split}")
                variations = list(getter())
                if self.order == "spread":
                    variations = [variations[i] for i in spread(len(variations))]
                per_task[t] = variations
            eps: list[tuple[str, int]] = []
            longest = max(len(v) for v in per_task.values())
            for k in range(longest):
                for t in self.task_names:
                    if k < len(per_task[t]):
                        eps.append((t, per_task[t][k]))
            self._episodes = eps
        return self._episodes

    def __len__(self) -> int:
        return len(self.episodes())

    def task_type(self, episode: int | None = None) -> str | None:
        if episode is None:
            return self._current[0] if self._current else None
        return self.episodes()[self._check_episode(episode)][0]

    def step_budget(self, episode: int) -> int | None:
        if self.budget is None:
            return None
        task = self.task_type(episode)
        want = math.ceil(self.budget_multiple * GOLD_LENGTHS[str(task)])
        return min(self.step_limit, max(self.budget_min, want))

    # -- protocol ---------------------------------------------------------------
    def _episodes_phrase(self, episode: int) -> str:
        return f"the {self.split} split has {len(self)} episodes"

    def _reset(self, episode: int) -> str:
        task, variation = self.episodes()[episode]
        self._load(task, variation, gold=False)
        obs, info = self._sim.reset()
        self._current, self._gold, self._taken, self._won = (task, variation), None, [], False
        self._task = self._sim.get_task_description()
        self._last_info = info
        return obs

    def _load(self, task: str, variation: int, *, gold: bool) -> None:
        self._sim.load(task, variation, self.simplifications, generateGoldPath=gold)

    def _step(self, action: str) -> tuple[str, float, bool, bool]:
        obs, reward, done, info = self._sim.step(action)
        self._taken.append(action)
        self._last_info = info
        score = float(info.get("score", 0))
        self._won = score >= 100
        # the simulator ends the episode past its step limit; a -100 score ends it too
        truncated = bool(
            done and not self._won and score >= 0 and info.get("moves", 0) > self._sim.envStepLimit
        )
        return obs, float(reward), bool(done or self._won) and not truncated, truncated

    def _outcome(self) -> tuple[bool, float]:
        return self._won, float(self._last_info.get("score", 0))

    def episode_metrics(self) -> dict[str, float]:
        """The ScienceWorld score as the literature averages it (clamped at 0: a wrong
        ``focus on`` scores -100 in the simulator) and as the simulator gave it."""
        if self._current is None:
            return {}
        raw = float(self._last_info.get("score", 0) or 0)
        return {"score": max(0.0, raw), "raw score": raw}

    def _extra_info(self) -> dict[str, Any]:
        task, variation = self._current or ("", 0)
        return {"task_name": task, "variation": variation}

    def admissible_actions(self) -> list[str] | None:
        valid = self._last_info.get("valid")
        if not valid:
            return None
        # read once per step, not once per action (the list runs to thousands)
        doors = _DOORS.findall(str(self._last_info.get("look") or ""))
        only_door = doors[0] if len(doors) == 1 else None
        return dedupe(_door_to(str(a), only_door) for a in valid)

    def expert_actions(self) -> list[str] | None:
        if self._current is None:
            return None
        if self._gold is None:
            # The gold path is generated at load time; regenerate it and replay what was
            # already done so the episode's state is unchanged (the simulator is
            # deterministic for a given variation).
            task, variation = self._current
            taken = list(self._taken)
            self._load(task, variation, gold=True)
            self._gold = [str(a) for a in self._sim.get_gold_action_sequence()]
            _obs, info = self._sim.reset()
            self._last_info = info
            for a in taken:
                _, _, _, self._last_info = self._sim.step(a)
        return list(self._gold)

    def _close(self) -> None:
        sim, self._sim = getattr(self, "_sim", None), None
        if sim is not None:
            sim.close()
