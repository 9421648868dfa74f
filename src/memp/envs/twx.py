"""TextWorldExpress (Jansen & Côté, 2022): fast re-implementations of TextWorld games.

Supported games: ``twc`` (TextWorld Commonsense: put objects where they belong) and
``cookingworld`` (the cooking games). Episode ``i`` of a split is the ``i``-th seed of
that split's official seed range (1,000 per split); the expert is the gold path.
"""

from __future__ import annotations

from typing import Any

from memp.envs import require
from memp.envs.textgame import JavaNotFound, RegexSemantics, dedupe, find_java
from memp.errors import InvalidInput, UnknownOption

GAMES = ("twc", "cookingworld")
SPLITS = {"train": "train", "dev": "dev", "valid": "dev", "validation": "dev", "test": "test"}

SEMANTICS = RegexSemantics(
    navigation=[r"move\s+(?:north|south|east|west)\b", r"go\s+(?:north|south|east|west)\b"],
    noop=[r"look around\b", r"examine\b", r"inventory\b", r"read\b"],
    failure=[
        "Unknown action",
        "I'm not sure",
        "You can't",
        "That is not",
        "not possible",
        "is closed",
    ],
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
)


class TWXEnv:
    """One split of a TextWorldExpress game.

    Options: ``game`` (twc | cookingworld, default twc), ``params`` (the game's
    parameter string, e.g. ``"numLocations=1,includeDoors=0"``; default the game's own
    defaults), ``n`` (limit the number of episodes), ``step_limit`` (default 100).
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
        if split not in SPLITS:
            raise UnknownOption("twx split", split, SPLITS)
        if game not in GAMES:
            raise UnknownOption("twx game", game, GAMES)
        twx = require("textworld_express", "textworld-express", why="the twx environment needs it")
        if find_java() is None:
            raise JavaNotFound("TextWorldExpress")
        self.split, self.game, self.params = SPLITS[split], game, params
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
        self._episode: int | None = None

    def __len__(self) -> int:
        return len(self._seeds)

    def reset(
        self, *, episode: int | None = None, seed: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        if episode is None:
            episode = 0 if seed is None else seed % len(self._seeds)
        if not 0 <= episode < len(self._seeds):
            raise InvalidInput(
                f"episode {episode} is out of range: this split has {len(self._seeds)} episodes"
            )
        obs, info = self._sim.reset(
            seed=self._seeds[episode], gameFold=self.split, gameName=self.game,
            gameParams=self.params, generateGoldPath=True,
        )  # fmt: skip
        self._info_raw, self._episode = info, episode
        self._gold = [str(a) for a in self._sim.getGoldActionSequence()]
        return obs, self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._episode is None:
            raise InvalidInput("call reset(episode=...) before step()")
        obs, reward, done, info = self._sim.step(action)
        self._info_raw = info
        won, lost = bool(info.get("tasksuccess")), bool(info.get("taskfailure"))
        terminated = won or lost
        truncated = bool(done) and not terminated
        return obs, float(reward), terminated, truncated, self._info()

    def _info(self) -> dict[str, Any]:
        i = self._info_raw
        return {
            "task": str(i.get("taskDescription", "")),
            "admissible": self.admissible_actions(),
            "won": bool(i.get("tasksuccess", False)),
            "lost": bool(i.get("taskfailure", False)),
            "score": float(i.get("score", 0.0)),
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

    def close(self) -> None:
        sim, self._sim = getattr(self, "_sim", None), None
        if sim is not None:
            # The JVM (and module globals) may already be gone at interpreter exit.
            try:  # noqa: SIM105 - contextlib may be torn down at interpreter exit
                sim.close()
            except Exception:
                pass

    def __del__(self) -> None:
        self.close()
