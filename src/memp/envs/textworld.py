"""TextWorld cooking games (tw-cooking, as in the First TextWorld Problems), generated offline.

Episode ``i`` of a split is the game ``tw-make tw-cooking`` builds with seed
``SEED_BASE[split] + i`` and the chosen difficulty; games are generated on first use
(about 3 s each) into a cache directory and reused afterwards. The expert is the
game's walkthrough; admissible commands come from the engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from memp.envs import require
from memp.envs.base import Env, int_option
from memp.envs.textgame import RegexSemantics
from memp.errors import BackendError, MissingDependency, check_choice

# Disjoint seed ranges per split; tw-cooking's own --split additionally keeps the
# food items of valid/test games unseen in training.
SEED_BASE = {"train": 0, "valid": 100_000, "test": 200_000}
SPLIT_ALIASES = {"dev": "valid", "validation": "valid"}

# Difficulty presets: (recipe, take, go, open, cook, cut, drop).
LEVELS: dict[str, tuple[int, int, int, bool, bool, bool, bool]] = {
    "easy": (1, 1, 1, False, False, False, False),
    "medium": (2, 2, 6, True, True, True, False),
    "hard": (3, 3, 9, True, True, True, True),
}

SEMANTICS = RegexSemantics(
    navigation=[r"go\s+(?:north|south|east|west)\b"],
    noop=[r"look\b", r"examine\b", r"inventory\b", r"read\b"],
    failure=[
        "You can't",
        "That's not a verb",
        "I didn't understand",
        "You need to",
        "can't see any such thing",
        "is closed",
        "You don't",
        "Nothing happens",
    ],
    target=[
        r"^(?:take|get)\s+.+?\s+from\s+(?P<loc>.+)$",
        r"^(?:put|insert)\s+.+?\s+(?:on|into|in)\s+(?P<loc>.+)$",
        r"^(?:cook|slice|dice|chop)\s+.+?\s+with\s+(?P<loc>.+)$",
        r"^go\s+(?P<loc>north|south|east|west)$",
        r"^(?:open|close|examine|take|eat|drink|drop)\s+(?P<loc>.+)$",
    ],
    seen=[
        r"(?:you see|you can see|there is|there's|you make out|you spot|you notice)\s+(?P<items>[^.!?]+)",
        r"\bon the [a-z ]+ you (?:can )?see (?P<items>[^.!?]+)",
    ],
)


def _is_art(line: str) -> bool:
    body = line.strip()
    return len(body) > 8 and sum(c.isalpha() for c in body) < 0.3 * len(body)


def clean_feedback(text: str) -> str:
    """Drop the ASCII-art banner of the intro text and squeeze blank lines."""
    lines = [ln.rstrip() for ln in text.splitlines() if not _is_art(ln)]
    return re.sub(r"\n\s*\n+", "\n", "\n".join(lines)).strip()


def default_cache_dir() -> Path:
    env = os.environ.get("MEMP_TEXTWORLD_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "memp" / "textworld"


def tw_make_command() -> list[str]:
    """How to call ``tw-make`` with this interpreter (the console script of the textworld wheel)."""
    cand = Path(sys.executable).parent / "tw-make"
    path = str(cand) if cand.exists() else shutil.which("tw-make")
    if path is None:
        raise MissingDependency(
            "textworld", extra="envs", why="its `tw-make` command was not found"
        )
    return [sys.executable, path]


class TextWorldEnv(Env):
    """One split of generated tw-cooking games.

    Options: ``n`` (episodes in the split, default 100), ``level`` (easy | medium |
    hard, default medium), ``cache_dir`` (default ``$MEMP_TEXTWORLD_CACHE`` or
    ``~/.cache/memp/textworld``), ``max_steps`` (step limit, default 100).
    """

    name = "textworld"
    family = "cooking"
    semantics = SEMANTICS

    def __init__(
        self,
        split: str = "train",
        *,
        n: int = 100,
        level: str = "medium",
        cache_dir: str | Path | None = None,
        max_steps: int = 100,
    ) -> None:
        split = check_choice("textworld split", SPLIT_ALIASES.get(split, split), SEED_BASE)
        check_choice("textworld level", level, LEVELS)
        n = int_option("n", n, minimum=1)
        max_steps = int_option("max_steps", max_steps, minimum=1)
        require("textworld", "textworld", why="the textworld environment needs it")
        self.split, self.level, self.n, self.max_steps = split, level, n, max_steps
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._env: Any = None
        self._state: Any = None

    def __len__(self) -> int:
        return self.n

    # -- games ------------------------------------------------------------------
    def game_path(self, episode: int) -> Path:
        seed = SEED_BASE[self.split] + episode
        return self.cache_dir / self.split / self.level / f"cooking_{self.level}_{seed}.z8"

    def ensure_game(self, episode: int) -> Path:
        path = self.game_path(episode)
        if path.exists() and path.with_suffix(".json").exists():
            return path
        recipe, take, go, opn, cook, cut, drop = LEVELS[self.level]
        args = [
            "tw-cooking", "--recipe", str(recipe), "--take", str(take), "--go", str(go),
            "--split", self.split, "--seed", str(SEED_BASE[self.split] + episode),
            "--recipe-seed", str(SEED_BASE[self.split] + episode), "--silent", "-f",
        ]  # fmt: skip
        args += [
            flag
            for flag, on in (("--open", opn), ("--cook", cook), ("--cut", cut), ("--drop", drop))
            if on
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        # Generate into a private temp dir and move into place, so concurrent workers
        # never read a half-written game.
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            out = Path(tmp) / path.name
            proc = subprocess.run(
                [*tw_make_command(), *args, "--output", str(out)],
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            if proc.returncode != 0 or not out.exists():
                raise BackendError(
                    f"tw-make failed for episode {episode}: {proc.stderr.strip()[-800:]}"
                )
            for f in sorted(Path(tmp).iterdir(), key=lambda p: p.suffix == ".z8"):
                os.replace(f, path.parent / f.name)
        return path

    # -- protocol ---------------------------------------------------------------
    def _reset(self, episode: int) -> str:
        import textworld

        path = self.ensure_game(episode)
        if self._env is not None:
            self._env.close()
        infos = textworld.EnvInfos(
            admissible_commands=True, objective=True, won=True, lost=True, score=True,
            max_score=True, extras=["walkthrough"], moves=True,
        )  # fmt: skip
        with warnings.catch_warnings():
            # Jericho warns that generated games lack its per-game tables; TextWorld's own
            # state tracking (score, won, admissible commands) is what we use.
            warnings.simplefilter("ignore")
            self._env = textworld.start(str(path), request_infos=infos)
        self._state = self._env.reset()
        self._task = self._state.objective or ""
        return clean_feedback(self._state.feedback)

    def _step(self, action: str) -> tuple[str, float, bool, bool]:
        before = self._state.score or 0
        self._state, _score, done = self._env.step(action)
        reward = float((self._state.score or 0) - before)
        terminated = bool(done or self._state.won or self._state.lost)
        return clean_feedback(self._state.feedback), reward, terminated, False

    def _outcome(self) -> tuple[bool, float]:
        return bool(self._state.won), float(self._state.score or 0)

    def _extra_info(self) -> dict[str, Any]:
        s = self._state
        return {
            "lost": bool(s.lost),
            "max_score": float(s.max_score or 0),
            "game": str(self.game_path(self._episode or 0)),
        }

    def admissible_actions(self) -> list[str] | None:
        if self._state is None:
            return None
        return list(self._state.admissible_commands or [])

    def expert_actions(self) -> list[str] | None:
        if self._state is None:
            return None
        walk = self._state.get("extra.walkthrough")
        return list(walk) if walk else None

    def _close(self) -> None:
        env, self._env = getattr(self, "_env", None), None
        if env is not None:
            env.close()
