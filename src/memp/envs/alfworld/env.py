"""ALFWorld on the real ``alfworld`` engine (TextWorld PDDL games).

Episodes are the game files of one split, played directly with the TextWorld PDDL
engine and the official ALFRED wrappers, so ``reset(episode=i)`` always plays game
``i`` (``AlfredTWEnv`` samples games at random and, with no games, spins forever).

Data comes from, in order: ``data_dir`` (real ALFWorld data or a folder written by
``memp alfworld generate``), ``$ALFWORLD_DATA/json_2.1.1/<split>``, or the default
cache of generated games (``~/.cache/memp/alfworld/<split>-seed<S>``). Generated games
are labelled "ALFWorld-like" everywhere (``env.label``, ``info["alfworld_like"]``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
from pathlib import Path
from typing import Any

from memp.envs.alfworld_gen import (
    MANIFEST,
    TASK_TYPES,
    ExpertRunner,
    default_cache_dir,
    quiet_alfworld_import,
)
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


_HOW_TO_GET = (
    "Get ALFWorld games in one of two ways:\n"
    "  1. the official ALFWorld game files: set ALFWORLD_DATA (or pass --data / data_dir) to "
    "an unpacked folder (games in json_2.1.1/<split>/), to a split archive such as "
    "{split}.tar.xz, or to a folder holding the archives; on a machine with internet "
    "`alfworld-download` fetches them;\n"
    "  2. ALFWorld-like games generated locally from the layouts in the alfworld wheel: "
    "`memp alfworld generate --split {split} --games 60` (then use the default cache, or "
    "pass data_dir=<--out folder>)."
)


ENV_SPLITS: tuple[str, ...] = ("train", "valid_train", "valid_seen", "valid_unseen")
_ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz", ".tgz", ".tar")


def game_task_type(game: Path) -> str:
    """A game's task type: from ``traj_data.json`` where present (generated games and
    ALFRED-style data), else the first part of its task folder's name
    (``pick_heat_then_place_in_recep-Egg-None-Fridge-13/trial_.../game.tw-pddl``), which
    is all the official game files carry."""
    traj = game.parent / "traj_data.json"
    if traj.exists():
        with contextlib.suppress(OSError, json.JSONDecodeError, KeyError):
            return str(json.loads(traj.read_text())["task_type"])
    for folder in (game.parent.parent.name, game.parent.name):
        head = folder.split("-", 1)[0]
        if head in TASK_TYPES:
            return head
    raise InvalidInput(
        f"cannot tell the task type of {game}: its task folder should be named "
        f"<task type>-<object>-...  (one of {', '.join(TASK_TYPES)}) or hold traj_data.json"
    )


def _find_games(root: Path, task_types: set[str]) -> list[Path]:
    """Solvable games under ``root`` in a fixed order (the official collection rules:
    no ``movable`` or ``Sliced`` task variants, ``solvable`` set in the game file)."""
    games = []
    for path in sorted(root.rglob("game.tw-pddl")):
        s = str(path)
        if "movable" in s or "Sliced" in s:
            continue
        try:
            if game_task_type(path) not in task_types:
                continue
            if not json.loads(path.read_text()).get("solvable"):
                continue
        except (OSError, json.JSONDecodeError, InvalidInput):
            continue
        games.append(path)
    return games


def _interleave(games: list[Path]) -> list[Path]:
    by_type: dict[str, list[Path]] = {}
    for g in games:
        by_type.setdefault(game_task_type(g), []).append(g)
    # within a type, a fixed shuffle: sorted task folders run one object after another
    for t, q in by_type.items():
        random.Random(t).shuffle(q)
    queues = [by_type[t] for t in TASK_TYPES if t in by_type]
    out: list[Path] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def _unpack(archive: Path) -> Path:
    """An official split archive unpacked once into the cache; returns the unpacked root.

    Unpacked into a temporary folder and renamed into place, so a killed process never
    leaves a half-unpacked copy that looks complete.
    """
    import hashlib
    import shutil
    import tarfile
    import tempfile

    st = archive.stat()
    tag = hashlib.sha256(f"{archive.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    dest = default_cache_dir("official", 0).parent / "official" / f"{archive.name}-{tag[:12]}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        try:
            tmp.rename(dest)
        except OSError:  # another process unpacked it first
            if not dest.is_dir():
                raise
    except (OSError, tarfile.TarError) as exc:
        raise InvalidInput(f"cannot unpack {archive}: {exc}; is it an ALFWorld game archive?") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(_ARCHIVE_SUFFIXES)


def _candidates(base: Path, split: str) -> list[Path]:
    """Where a split's games may be under a user's path: an unpacked official folder
    (``<base>/json_2.1.1/<split>``, ``<base>/<split>``, or the split folder itself), an
    archive of a split, or a folder holding ``<split>.tar.xz`` as published."""
    if _is_archive(base):
        base = _unpack(base)
    out = [base / "json_2.1.1" / split, base / split]
    for suffix in _ARCHIVE_SUFFIXES:
        arch = base / f"{split}{suffix}"
        if _is_archive(arch):
            out.append(_unpack(arch) / "json_2.1.1" / split)
    out.append(base)
    return out


def resolve_data(split: str, data_dir: str | Path | None, seed: int = 0) -> tuple[Path, bool]:
    """Where the games of ``split`` are, and whether they are generated (ALFWorld-like).

    Raises :class:`MissingData` (without touching the engine) when there is nothing to play.
    """
    tried: list[Path] = []
    given = data_dir if data_dir is not None else os.environ.get("ALFWORLD_DATA") or None
    if given is not None:
        base = Path(given).expanduser()
        if not base.exists():
            source = "data_dir" if data_dir is not None else "ALFWORLD_DATA"
            raise MissingData(
                f"ALFWorld data path {base} ({source}) does not exist: point it at an unpacked "
                "official folder (holding json_2.1.1/<split>/), a split archive such as "
                f"{split}.tar.xz, or a folder holding the archives"
            )
        candidates = _candidates(base, split)
    else:
        candidates = [default_cache_dir(split, seed)]
    for cand in candidates:
        tried.append(cand)
        if cand.is_dir() and any(cand.rglob("game.tw-pddl")):
            generated = _manifest(cand)
            if generated is not None and generated.get("split") not in (None, split):
                raise InvalidInput(
                    f"{cand} holds generated games of split {generated.get('split')!r}, not {split!r}; "
                    f"generate the {split} split with `memp alfworld generate --split {split}`"
                )
            return cand, generated is not None
    where = ", ".join(str(t) for t in tried)
    raise MissingData(
        f"no ALFWorld games for split {split!r} (looked in: {where}).\n"
        + _HOW_TO_GET.format(split=split)
    )


def _manifest(folder: Path) -> dict[str, Any] | None:
    for d in (folder, *folder.parents[:2]):
        f = d / MANIFEST
        if f.exists():
            return json.loads(f.read_text())
    return None


class AlfworldEnv:
    """One split of ALFWorld; episode ``i`` is the ``i``-th solvable game file."""

    name = "alfworld"
    family = "household"

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
        # Options may arrive as strings from the command line (--opt key=value).
        if isinstance(task_types, str):
            task_types = [t.strip() for t in task_types.split(",") if t.strip()]
        try:
            max_steps, seed, expert_max_steps = int(max_steps), int(seed), int(expert_max_steps)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"max_steps, seed and expert_max_steps must be integers ({exc})"
            ) from exc
        types = set(task_types or TASK_TYPES)
        for t in types:
            check_choice("ALFWorld task type", t, TASK_TYPES)
        if max_steps < 1:
            raise InvalidInput(f"max_steps must be at least 1 (got {max_steps})")
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
        self._expert: ExpertRunner | None = None
        self._expert_cache: dict[int, list[str]] = {}
        self._episode: int | None = None
        self._next_episode = 0
        self._task = ""
        self._steps = 0
        self._done = True
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
            except ImportError as exc:
                raise MissingDependency("alfworld", extra="envs", why=str(exc)) from exc
            infos = textworld.EnvInfos(admissible_commands=True, won=True, extras=["gamefile"])
            self._env = AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))
        return self._env

    def __len__(self) -> int:
        return len(self.games)

    @property
    def task(self) -> str:
        return self._task

    def game_file(self, episode: int | None = None) -> Path:
        i = self._episode if episode is None else episode
        if i is None:
            raise InvalidInput("no episode started; call reset(episode=i) first")
        return self.games[i]

    def task_type(self, episode: int | None = None) -> str:
        return game_task_type(self.game_file(episode))

    # ------------------------------------------------------------------ protocol
    def reset(
        self, *, episode: int | None = None, seed: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        if episode is None:
            episode = (
                random.Random(seed).randrange(len(self))
                if seed is not None
                else self._next_episode % len(self)
            )
        if not 0 <= episode < len(self):
            hint = (
                f"; generate more with `memp alfworld generate --split {self.split} --games {episode + 1}`"
                " (the games already there are kept)"
                if self.alfworld_like
                else ""
            )
            raise InvalidInput(
                f"episode {episode} is out of range: {self.label} {self.split} has {len(self)} "
                f"games (0..{len(self) - 1}){hint}"
            )
        env = self._engine()
        env.load(str(self.games[episode]))
        # The grammar picks among phrasings at random: pin it so an episode always reads the same.
        state = random.getstate()
        random.seed(episode)
        try:
            self._state = env.reset()
        finally:
            random.setstate(state)
        self._episode, self._next_episode = episode, episode + 1
        self._steps, self._done = 0, False
        text = self._state.feedback
        self._places = set(_ITEM_LIST.findall(text.split("Your task is to:")[0].lower()))
        m = re.search(r"Your task is to: (.+?)\s*$", text, re.S)
        self._task = m.group(1).strip().rstrip(".") if m else ""
        obs = text.split("=-", 1)[-1].strip() if "-= Welcome" in text else text.strip()
        return obs, self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise InvalidInput("no episode started; call reset(episode=i) first")
        if self._done:
            raise InvalidInput("the episode is over; call reset() to start another")
        action = (action or "").strip()
        self._state, _, _ = self._env.step(action)
        self._steps += 1
        won = bool(self._state["won"])
        truncated = not won and self._steps >= self.max_steps
        self._done = won or truncated
        return self._state.feedback.strip(), 1.0 if won else 0.0, won, truncated, self._info()

    def admissible_actions(self) -> list[str] | None:
        if self._state is None:
            return None
        return list(self._state["admissible_commands"])

    def expert_actions(self) -> list[str] | None:
        """The official hand-coded expert's plan for the current episode, as it played.

        Raw and noisy (detours, open/close pairs, "look"); replaying it wins the game.
        """
        if self._episode is None:
            raise InvalidInput("no episode started; call reset(episode=i) first")
        i = self._episode
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
            lines = [f"Task: {info['task']}.", f"Observation: {obs.split('Your task is to:')[0].strip()}"]
            for a in train.expert_actions() or []:
                o, _, done, _, _ = train.step(a)
                lines += [f"Action: {a}", f"Observation: {o}"]
                if done:
                    break
            return "\n".join(lines)
        finally:
            train.close()

    def close(self) -> None:
        for env in (self._env, self._expert):
            if env is not None:
                with contextlib.suppress(Exception):  # closing is best effort
                    env.close()
        self._env = self._expert = None
        self._state = None

    def _info(self) -> dict[str, Any]:
        won = bool(self._state["won"]) if self._state is not None else False
        return {
            "task": self._task,
            "admissible": self.admissible_actions(),
            "won": won,
            "score": 1.0 if won else 0.0,
            "episode": self._episode,
            "steps": self._steps,
            "game_file": str(self.games[self._episode]) if self._episode is not None else None,
            "task_type": self.task_type() if self._episode is not None else None,
            "environment": self.name,
            "label": self.label,
            "alfworld_like": self.alfworld_like,
        }

    def __repr__(self) -> str:
        return f"AlfworldEnv(split={self.split!r}, games={len(self)}, label={self.label!r}, data={str(self.data_root)!r})"
