"""ScienceWorld (Wang et al., 2022): 30 science tasks, official train/dev/test variations.

Episodes of a split are the (task, variation) pairs of that split, ordered round-robin
over tasks (episode 0..29 are the first variation of each of the 30 tasks), so a small
``n`` already covers every task. The expert is the simulator's gold path.

Facts the agent must know: a ``focus on X`` that names the wrong object ends the
episode with score -100; the episode is won when the score reaches 100.
"""

from __future__ import annotations

import contextlib
from typing import Any

from memp.envs import require
from memp.envs.textgame import JavaNotFound, RegexSemantics, dedupe, find_java
from memp.errors import InvalidInput, UnknownOption

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


class ScienceWorldEnv:
    """One split of ScienceWorld.

    Options: ``tasks`` (subset of task names, default all 30), ``simplifications``
    (e.g. ``"easy"``), ``step_limit`` (default 100).
    """

    name = "scienceworld"
    family = "science"
    semantics = SEMANTICS

    def __init__(
        self,
        split: str = "train",
        *,
        tasks: list[str] | None = None,
        simplifications: str = "",
        step_limit: int = 100,
    ) -> None:
        if split not in SPLITS:
            raise UnknownOption("scienceworld split", split, SPLITS)
        self.split = SPLITS[split]
        sw = require("scienceworld", "scienceworld", why="the scienceworld environment needs it")
        if find_java() is None:
            raise JavaNotFound("ScienceWorld")
        self._sim = sw.ScienceWorldEnv("", envStepLimit=step_limit)
        names = list(self._sim.get_task_names())
        if tasks:
            for t in tasks:
                if t not in names:
                    raise UnknownOption("scienceworld task", t, names)
            names = list(tasks)
        self.task_names = names
        self.simplifications = simplifications
        self._episodes: list[tuple[str, int]] | None = None
        self._task_text = ""
        self._last_info: dict[str, Any] = {}
        self._current: tuple[str, int] | None = None
        self._gold: list[str] | None = None
        self._taken: list[str] = []
        self._done = False

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
    def reset(
        self, *, episode: int | None = None, seed: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        eps = self.episodes()
        if episode is None:
            episode = 0 if seed is None else seed % len(eps)
        if not 0 <= episode < len(eps):
            raise InvalidInput(
                f"episode {episode} is out of range: the {self.split} split has {len(eps)} episodes"
            )
        task, variation = eps[episode]
        self._load(task, variation, gold=False)
        obs, info = self._sim.reset()
        self._current, self._gold, self._taken, self._done = (task, variation), None, [], False
        self._task_text = self._sim.get_task_description()
        self._last_info = info
        return obs, self._info(info, won=False)

    def _load(self, task: str, variation: int, *, gold: bool) -> None:
        self._sim.load(task, variation, self.simplifications, generateGoldPath=gold)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._current is None:
            raise InvalidInput("call reset(episode=...) before step()")
        obs, reward, done, info = self._sim.step(action)
        self._taken.append(action)
        self._last_info = info
        score = float(info.get("score", 0))
        won = score >= 100
        truncated = bool(
            done and not won and score >= 0 and info.get("moves", 0) > self._sim.envStepLimit
        )
        self._done = bool(done or won)
        return (
            obs,
            float(reward),
            bool(done or won) and not truncated,
            truncated,
            self._info(info, won=won),
        )

    def _info(self, info: dict[str, Any], *, won: bool) -> dict[str, Any]:
        task, variation = self._current or ("", 0)
        return {
            "task": self._task_text,
            "admissible": self.admissible_actions(),
            "won": won,
            "score": float(info.get("score", 0)),
            "task_name": task,
            "variation": variation,
        }

    @property
    def task(self) -> str:
        return self._task_text

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

    def close(self) -> None:
        sim, self._sim = getattr(self, "_sim", None), None
        if sim is not None:
            # The JVM may already be gone at interpreter exit.
            with contextlib.suppress(Exception):
                sim.close()

    def __del__(self) -> None:
        self.close()
