"""TextWorldExpress (Jansen & Côté, 2022): fast re-implementations of TextWorld games.

Supported games: ``twc`` (TextWorld Commonsense: put objects where they belong) and
``cookingworld`` (the cooking games). Episode ``i`` of a split is the ``i``-th seed of
that split's official seed range (1,000 per split); the expert is the gold path.
"""

from __future__ import annotations

from typing import Any

from memp.envs import require
from memp.envs.base import Env, int_option
from memp.envs.textgame import JavaNotFound, RegexSemantics, dedupe, find_java
from memp.errors import check_choice

GAMES = ("twc", "cookingworld")
SPLITS = {"train": "train", "dev": "dev", "valid": "dev", "validation": "dev", "test": "test"}

SEMANTICS = RegexSemantics(
    navigation=[r"move\s+(?:north|south|east|west)\b", r"go\s+(?:north|south|east|west)\b"],
    noop=[r"look around\b", r"examine\b", r"inventory\b", r"read\b"],
    target=[
        r"^(?:put)\s+.+?\s+(?:in|on)\s+(?P<loc>.+)$",
        r"^cook\s+.+?\s+in\s+(?P<loc>.+)$",
        r"^(?:move|go)\s+(?P<loc>north|south|east|west)$",
        r"^(?:open|close)\s+door to\s+(?P<loc>.+)$",
        r"^(?:open|close|examine|take|eat|slice|dice|chop|read|drop)\s+(?P<loc>.+)$",
    ],
    seen=[
        r"(?:you see|there is also|you also see)\s+(?P<items>[^.]+)",
        r"that has\s+(?P<items>[^.]+?) (?:on|in) it",
    ],
    # what the simulator answers when an action did nothing
    failure=[
        "Unknown action",
        "I'm not sure",
        "You can't",
        "That is not",
        "not possible",
        "is closed",
    ],
)


class TWXEnv(Env):
    """One split of a TextWorldExpress game.

    Options: ``game`` (twc | cookingworld, default twc), ``params`` (the game's
    parameter string, e.g. ``"numLocations=1,includeDoors=0"``; default the game's own
    defaults), ``n`` (limit the number of episodes), ``step_limit`` (default 100; the
    simulator enforces it).
    """

    name = "twx"
    family = "cooking"
    semantics = SEMANTICS

    def __init__(
        self,
        split: str = "train",
        *,
        game: str = "twc",
        params: str = "",
        n: int | None = None,
        step_limit: int = 100,
    ) -> None:
        split = SPLITS[check_choice("twx split", split, SPLITS)]
        check_choice("twx game", game, GAMES)
        step_limit = int_option("step_limit", step_limit, minimum=1)
        if n is not None:
            n = int_option("n", n, minimum=1)
        twx = require("textworld_express", "textworld-express", why="the twx environment needs it")
        if find_java() is None:
            raise JavaNotFound("TextWorldExpress")
        self.split, self.game, self.params = split, game, params
        # twc is about household commonsense, cookingworld about cooking.
        self.family = "household" if game == "twc" else "cooking"
        self._sim = twx.TextWorldExpressEnv(envStepLimit=step_limit)
        self._sim.load(gameName=game, gameParams=params)
        getter = {
            "train": "getValidSeedsTrain",
            "dev": "getValidSeedsDev",
            "test": "getValidSeedsTest",
        }
        self._seeds = list(getattr(self._sim, getter[self.split])())
        if n is not None:
            self._seeds = self._seeds[:n]
        self._info_raw: dict[str, Any] = {}
        self._gold: list[str] | None = None

    def __len__(self) -> int:
        return len(self._seeds)

    def _reset(self, episode: int) -> str:
        obs, info = self._sim.reset(
            seed=self._seeds[episode], gameFold=self.split, gameName=self.game,
            gameParams=self.params, generateGoldPath=True,
        )  # fmt: skip
        self._info_raw = info
        self._gold = [str(a) for a in self._sim.getGoldActionSequence()]
        return obs

    def _step(self, action: str) -> tuple[str, float, bool, bool]:
        obs, reward, done, info = self._sim.step(action)
        self._info_raw = info
        terminated = bool(info.get("tasksuccess")) or bool(info.get("taskfailure"))
        # the simulator ends an episode that is neither won nor lost at its step limit
        return obs, float(reward), terminated, bool(done) and not terminated

    def _outcome(self) -> tuple[bool, float]:
        i = self._info_raw
        return bool(i.get("tasksuccess", False)), float(i.get("score", 0.0))

    def _extra_info(self) -> dict[str, Any]:
        return {
            "lost": bool(self._info_raw.get("taskfailure", False)),
            "seed": self._seeds[self._episode] if self._episode is not None else None,
            "game": self.game,
        }

    @property
    def task(self) -> str:
        return str(self._info_raw.get("taskDescription", ""))

    def admissible_actions(self) -> list[str] | None:
        valid = self._info_raw.get("validActions")
        return sorted(dedupe(str(a) for a in valid)) if valid else None

    def expert_actions(self) -> list[str] | None:
        return None if self._gold is None else list(self._gold)

    def _close(self) -> None:
        sim, self._sim = getattr(self, "_sim", None), None
        if sim is not None:
            sim.close()
