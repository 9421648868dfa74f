"""ALFWorld on the real ``alfworld`` engine (TextWorld PDDL games).

Episodes are the game files of one split (see :mod:`memp.envs.alfworld.games` for
where they come from), played directly with the TextWorld PDDL engine and the official
ALFRED wrappers, so ``reset(episode=i)`` always plays game ``i`` (``AlfredTWEnv``
samples games at random and, with no games, spins forever). Generated games are
labelled "ALFWorld-like" everywhere (``env.label``, ``info["alfworld_like"]``).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
from pathlib import Path
from typing import Any

from memp.envs.alfworld.games import (
    _HOW_TO_GET,
    ENV_SPLITS,
    _find_games,
    _interleave,
    game_task_type,
    resolve_data,
)
from memp.envs.alfworld.generate import TASK_TYPES, ExpertRunner, quiet_alfworld_import
from memp.envs.base import Env, int_option, names_option
from memp.errors import InvalidInput, MissingData, MissingDependency, check_choice

_NOOP = re.compile(r"^(look|inventory|help|examine\b.*)$")
_NAV = re.compile(r"^go to (?P<loc>.+)$")
# Verbs whose last argument is the receptacle the action happens at.
_AT = re.compile(
    r"^(?:take .+ from|put .+ (?:in|on|in/on)|move .+ to|clean .+ with|heat .+ with|cool .+ with|"
    r"open|close|examine|slice .+ with)\s+(?P<loc>.+)$"
)
_SEEN = re.compile(
    r"(?:On the [^,]+, you see|In it, you see|Next to it, you see)\s+(?P<list>[^.]*)\."
)
# the receptacles of the starting view ("you see a cabinet 1, a countertop 2, ...")
_ITEM_LIST = re.compile(r"\b(?:a|an)\s+([a-z][a-z ]*?\s\d+)\b")
_ITEM = re.compile(r"\b(?:a|an|the)\s+(?P<name>[a-z][a-z ]*?\s\d+)\b")


def _walk_to_acts(plan: list[str], semantics: AlfworldSemantics, places: set[str]) -> list[str]:
    """The plan with a ``go to Y`` before each action on a receptacle Y the agent is not at.

    Official walkthroughs act on receptacles that share the agent's spot (``go to
    coffeemachine 1`` then ``take apple 2 from countertop 2``): the object is then never
    seen and the place it came from never visited, so nothing can be learned from it.
    """
    out: list[str] = []
    here: str | None = None
    for a in plan:
        loc = semantics.location(a)
        if semantics.is_navigation(a):
            here = loc
        elif loc and loc != here and loc in places:  # a place one can go to, not a box
            out.append(f"go to {loc}")
            here = loc
        out.append(a)
    return out


class AlfworldSemantics:
    """What ALFWorld actions and observations mean (see :class:`memp.envs.base.ActionSemantics`)."""

    def is_navigation(self, action: str) -> bool:
        return bool(_NAV.match(action.strip().lower()))

    def is_noop(self, action: str) -> bool:
        return bool(_NOOP.match(action.strip().lower()))

    def failed(self, action: str, observation: str) -> bool:
        return observation.strip().lower().startswith("nothing happens")

    def location(self, action: str) -> str | None:
        a = action.strip().lower()
        m = _NAV.match(a) or _AT.match(a)
        return m.group("loc").strip() if m else None

    def seen_objects(self, observation: str) -> list[str]:
        seen: list[str] = []
        for m in _SEEN.finditer(observation):
            for item in _ITEM.finditer(m.group("list").lower()):
                name = item.group("name").strip()
                if name not in seen:
                    seen.append(name)
        return seen

    def entity_type(self, name: str) -> str:
        return re.sub(r"\s*\d+$", "", name.strip().lower())

    def known_names(self) -> tuple[str, ...]:
        return ()  # receptacles are numbered instances, typed from what the game shows

    def is_irreversible(self, action: str) -> bool:
        return False  # every household action can be undone or repeated

    def place_of(self, observation: str) -> str | None:
        return None  # "You arrive at desk 1" follows a "go to": the action says it

    def way_to(self, action: str) -> str | None:
        return None  # every place is one "go to" away

    def look_around(self) -> str | None:
        return None  # arriving lists what the place holds


class AlfworldEnv(Env):
    """One split of ALFWorld; episode ``i`` is the ``i``-th solvable game file."""

    name = "alfworld"
    family = "household"
    episode_unit = "games"

    def __init__(
        self,
        split: str = "train",
        data_dir: str | Path | None = None,
        *,
        max_steps: int = 50,
        seed: int = 0,
        task_types: str | list[str] | tuple[str, ...] | None = None,
        expert_max_steps: int = 200,
        order: str = "sorted",
    ) -> None:
        self.split = check_choice("ALFWorld split", split, ENV_SPLITS)
        max_steps = int_option("max_steps", max_steps, minimum=1)
        seed = int_option("seed", seed)
        expert_max_steps = int_option("expert_max_steps", expert_max_steps)
        types = set(names_option(task_types) or TASK_TYPES)
        for t in types:
            check_choice("ALFWorld task type", t, TASK_TYPES)
        # Find the data first: with no games the engine would have nothing to do (or hang).
        self.data_root, self.alfworld_like = resolve_data(split, data_dir, seed)
        self.games = _find_games(self.data_root, types)
        # "interleaved": round-robin over task types, so the first N episodes of a split
        # sorted by task folder (one type after another) are a stratified sample.
        if check_choice("ALFWorld game order", order, ("sorted", "interleaved")) == "interleaved":
            self.games = _interleave(self.games)
        if not self.games:
            raise MissingData(
                f"{self.data_root} holds no solvable ALFWorld games of task types {sorted(types)}.\n"
                + _HOW_TO_GET.format(split=split)
            )
        self.label = "ALFWorld-like" if self.alfworld_like else "ALFWorld"
        self.semantics = AlfworldSemantics()
        self.max_steps = max_steps
        self.expert_max_steps = expert_max_steps
        self._env: Any = None
        self._loaded: str | None = None
        self._expert: ExpertRunner | None = None
        self._expert_cache: dict[int, list[str]] = {}
        self._next_episode = 0
        self._state: Any = None
        self._data_arg = data_dir
        self._seed = seed
        self._examples: dict[str, str | None] = {}
        self._places: set[str] = set()

    # ------------------------------------------------------------------ engine
    def _engine(self) -> Any:
        if self._env is None:
            try:
                with quiet_alfworld_import():
                    import textworld
                    from alfworld.agents.environment.alfred_tw_env import (
                        AlfredDemangler,
                        AlfredInfos,
                    )
                    from textworld.envs import PddlEnv
                    from textworld.envs.pddl import logic as pddl_logic
            except ImportError as exc:
                raise MissingDependency("alfworld", extra="envs", why=str(exc)) from exc
            infos = textworld.EnvInfos(admissible_commands=True, won=True, extras=["gamefile"])
            engine = _loaded_once(PddlEnv, pddl_logic)(infos)
            self._env = AlfredInfos(AlfredDemangler(engine, shuffle=False))
        return self._env

    def __len__(self) -> int:
        return len(self.games)

    def game_file(self, episode: int | None = None) -> Path:
        return self.games[self._require_episode() if episode is None else episode]

    def task_type(self, episode: int | None = None) -> str:
        return game_task_type(self.game_file(episode))

    # ------------------------------------------------------------------ protocol
    def _default_episode(self, seed: int | None) -> int:
        # no episode given: a seeded draw, else the game after the last one played
        if seed is not None:
            return random.Random(seed).randrange(len(self))
        return self._next_episode % len(self)

    def _episodes_phrase(self, episode: int) -> str:
        hint = (
            f"; generate more with `memp alfworld generate --split {self.split} --games {episode + 1}`"
            " (the games already there are kept)"
            if self.alfworld_like
            else ""
        )
        return f"{self.label} {self.split} has {len(self)} games (0..{len(self) - 1}){hint}"

    def _reset(self, episode: int) -> str:
        env = self._engine()
        path = str(self.games[episode])
        if path != self._loaded:
            # replaying the game just played (a replay check) keeps what loading built
            env.load(path)
            self._loaded = path
        # The grammar picks among phrasings at random: pin it so an episode always reads the same.
        state = random.getstate()
        random.seed(episode)
        try:
            self._state = env.reset()
        finally:
            random.setstate(state)
        self._next_episode = episode + 1
        text = self._state.feedback
        self._places = set(_ITEM_LIST.findall(text.split("Your task is to:")[0].lower()))
        m = re.search(r"Your task is to: (.+?)\s*$", text, re.S)
        self._task = m.group(1).strip().rstrip(".") if m else ""
        return text.split("=-", 1)[-1].strip() if "-= Welcome" in text else text.strip()

    def _step(self, action: str) -> tuple[str, float, bool, bool]:
        self._state, _, _ = self._env.step((action or "").strip())
        won = bool(self._state["won"])
        return self._state.feedback.strip(), 1.0 if won else 0.0, won, False

    def _outcome(self) -> tuple[bool, float]:
        won = bool(self._state["won"]) if self._state is not None else False
        return won, 1.0 if won else 0.0

    def admissible_actions(self) -> list[str] | None:
        if self._state is None:
            return None
        return list(self._state["admissible_commands"])

    def expert_actions(self) -> list[str] | None:
        """The official hand-coded expert's plan for the current episode, as it played.

        Raw and noisy (detours, open/close pairs, "look"); replaying it wins the game.
        """
        i = self._require_episode()
        if i not in self._expert_cache:
            game = json.loads(self.games[i].read_text())
            # The game file's own walkthrough (the official expert plan, in the game's
            # `move X to Y` grammar) first; the hand-coded expert where a file has none.
            plan = game.get("walkthrough")
            if not plan:
                if self._expert is None:
                    self._expert = ExpertRunner(max_steps=self.expert_max_steps)
                plan, _why = self._expert.solve(self.games[i], seed=i)
                plan = plan or game.get("walkthrough")
            if not plan:
                return None
            self._expert_cache[i] = _walk_to_acts(list(plan), self.semantics, self._places)
        return list(self._expert_cache[i])

    def worked_example(self, task: str = "") -> str | None:
        """An expert episode of the training split of the current task's type, as a
        transcript in the game's own grammar (the agent's few-shot example). ``None``
        where there is no training split beside this one."""
        ttype = self.task_type() if self._episode is not None else None
        if ttype is None:
            return None
        if ttype not in self._examples:
            self._examples[ttype] = self._play_example(ttype)
        return self._examples[ttype]

    def _play_example(self, ttype: str) -> str | None:
        try:
            train = AlfworldEnv(
                "train",
                self._data_arg,
                seed=self._seed,
                task_types=[ttype],
                max_steps=self.expert_max_steps,
            )
        except (MissingData, InvalidInput):
            return None
        try:
            obs, info = train.reset(episode=0)
            lines = [
                f"Task: {info['task']}.",
                f"Observation: {obs.split('Your task is to:')[0].strip()}",
            ]
            for a in train.expert_actions() or []:
                o, _, done, _, _ = train.step(a)
                lines += [f"Action: {a}", f"Observation: {o}"]
                if done:
                    break
            return "\n".join(lines)
        finally:
            train.close()

    def _close(self) -> None:
        for env in (getattr(self, "_env", None), getattr(self, "_expert", None)):
            if env is not None:
                with contextlib.suppress(Exception):  # one engine failing to close spares the other
                    env.close()
        self._env = self._expert = None
        self._loaded = None
        self._state = None

    def _extra_info(self) -> dict[str, Any]:
        i = self._episode
        return {
            "episode": i,
            "steps": self._steps,
            "game_file": str(self.games[i]) if i is not None else None,
            "task_type": self.task_type() if i is not None else None,
            "environment": self.name,
            "label": self.label,
            "alfworld_like": self.alfworld_like,
        }

    def __repr__(self) -> str:
        return f"AlfworldEnv(split={self.split!r}, games={len(self)}, label={self.label!r}, data={str(self.data_root)!r})"


def _loaded_once(pddl_env: type, pddl_logic: Any) -> type:
    """textworld's PDDL environment, without building a game's initial state twice.

    Loading a game builds its initial PDDL state (two fast-downward translations) and
    the reset that always follows builds the same state again: half of a reset's
    ~1.5 s. Here the first reset after a load keeps the state the load built.
    """

    class LoadedOnce(pddl_env):  # type: ignore[misc, valid-type]
        _fresh = False

        def load(self, filename_or_data: Any) -> None:
            super().load(filename_or_data)
            self._fresh = True

        def reset(self) -> Any:
            if not self._fresh:
                return super().reset()
            self._fresh = False
            built, make = self._pddl_state, pddl_logic.PddlState
            pddl_logic.PddlState = lambda *_a, **_k: built
            try:
                return super().reset()
            finally:
                pddl_logic.PddlState = make

    return LoadedOnce
