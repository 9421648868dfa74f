"""ScienceWorld (Wang et al., 2022): 30 science tasks, official train/dev/test variations.

Episodes of a split are the (task, variation) pairs of that split, ordered round-robin
over tasks (episode 0..29 are the first variation of each of the 30 tasks), so a small
``n`` already covers every task. The expert is the simulator's gold path.

Facts the agent must know: a ``focus on X`` that names the wrong object ends the
episode with score -100; the episode is won when the score reaches 100.
"""

from __future__ import annotations

from typing import Any

from memp.envs import require
from memp.envs.base import Env, int_option, names_option
from memp.envs.textgame import JavaNotFound, RegexSemantics, dedupe, find_java
from memp.errors import UnknownOption, check_choice

SPLITS = {"train": "train", "dev": "dev", "valid": "dev", "validation": "dev", "test": "test"}


SEMANTICS = RegexSemantics(
    navigation=[r"go to\b", r"teleport to\b"],
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
        r"^(?:go to|teleport to)\s+(?P<loc>.+)$",
        r"^use\s+.+?\s+on\s+(?P<loc>.+)$",
        r"^(?:open|close|activate|deactivate|look at|look in|examine|pick up|focus on|use|eat|"
        r"read|wait)\s+(?P<loc>.+)$",
        r"^connect\s+.+?\s+to\s+(?P<loc>.+)$",
    ],
    seen=[r"^\s*\t?(?P<items>(?:a|an|the)\s+[^\n]+?)\s*$"],
    # "substance in metal pot", "cup containing water": a thing, where it is / what it holds
    qualifier=r"\s+(?:in|containing|on)\s+",
)


class ScienceWorldEnv(Env):
    """One split of ScienceWorld.

    Options: ``tasks`` (subset of task names, default all 30), ``simplifications``
    (e.g. ``"easy"``), ``step_limit`` (default 100; the simulator enforces it).
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
    ) -> None:
        self.split = SPLITS[check_choice("scienceworld split", split, SPLITS)]
        step_limit = int_option("step_limit", step_limit, minimum=1)
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
                per_task[t] = list(getter())
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

    def _extra_info(self) -> dict[str, Any]:
        task, variation = self._current or ("", 0)
        return {"task_name": task, "variation": variation}

    def admissible_actions(self) -> list[str] | None:
        valid = self._last_info.get("valid")
        return dedupe(str(a) for a in valid) if valid else None

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
