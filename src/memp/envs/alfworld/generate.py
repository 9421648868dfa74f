"""Generate ALFWorld-format games locally ("ALFWorld-like" data).

The ALFWorld game data (``json_2.1.1``) is not on any package index, but the
``alfworld`` wheel ships everything needed to build games of the same format: the
PDDL domain and text grammar (``alfworld/data``), the 120 AI2-THOR floor plans as
receptacle poses and object-type lists (``alfworld/gen/layouts``), the
receptacle/object compatibility tables (``alfworld/gen/constants.py``) and the goal
templates of the six task types (``alfworld/gen/goal_library.py``).

For each game we sample a task in a floor plan, write ``initial_state.pddl`` and
``traj_data.json`` exactly as the official dataset lays them out, convert the pair
into ``game.tw-pddl`` with the official pieces (``add_task_to_grammar`` plus the
TextWorld PDDL engine and the ALFRED wrappers) and keep the game only when the
official hand-coded expert wins it.

Splits never share games: ``valid_unseen`` uses only the held-out floor plans
(ALFRED's test scenes), and ``train`` / ``valid_seen`` split the task space of the
training floor plans by a fixed hash of (task type, object, target, floor plan).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memp.errors import InvalidInput, MissingDependency

TASK_TYPES: tuple[str, ...] = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
SPLITS: tuple[str, ...] = ("train", "valid_seen", "valid_unseen")
MANIFEST = "memp_alfworld_generated.json"
GENERATOR_VERSION = 2

# Which room types each task type is drawn from (ALFRED's GOALS_VALID).
_ROOMS = {
    "pick_and_place_simple": ("kitchen", "livingroom", "bathroom", "bedroom"),
    "pick_two_obj_and_place": ("kitchen", "livingroom", "bathroom", "bedroom"),
    "look_at_obj_in_light": ("livingroom", "bedroom"),
    "pick_clean_then_place_in_recep": ("kitchen", "bathroom"),
    "pick_heat_then_place_in_recep": ("kitchen",),
    "pick_cool_then_place_in_recep": ("kitchen",),
}
_ROOM_BASE = {"kitchen": 0, "livingroom": 200, "bedroom": 300, "bathroom": 400}
# ALFRED holds out scenes 1-6 of each room type (its "unseen" scenes).
_UNSEEN = range(1, 7)
_SEEN = range(7, 31)
# The appliance each state-changing task needs, and the property its object must have.
_APPLIANCE = {
    "pick_clean_then_place_in_recep": ("SinkBasin", "Cleanable"),
    "pick_heat_then_place_in_recep": ("Microwave", "Heatable"),
    "pick_cool_then_place_in_recep": ("Fridge", "Coolable"),
}
_LAMPS = ("DeskLamp", "FloorLamp")
# Furniture a lamp can stand on (a lamp must sit in a receptacle to be usable).
_LAMP_HOLDERS = ("SideTable", "Desk", "Dresser", "CoffeeTable", "TVStand", "Shelf", "DiningTable")
_BASINS = {"Sink": "SinkBasin", "Bathtub": "BathtubBasin"}


def default_cache_dir(split: str, seed: int = 0) -> Path:
    """Where generated games go unless told otherwise (``~/.cache/memp/alfworld/<split>-seed<S>``)."""
    root = os.environ.get("MEMP_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "memp"
    )
    return Path(root) / "alfworld" / f"{split}-seed{seed}"


@dataclass
class GenerationReport:
    """What a generation run produced."""

    split: str
    seed: int
    out: Path
    kept: Counter = field(default_factory=Counter)  # solvable games kept, per task type
    attempts: Counter = field(default_factory=Counter)  # games converted and checked, per task type
    unsolvable: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)  # why dropped games were unsolvable
    failed_slots: list[int] = field(default_factory=list)  # slots with no solvable game found
    reused: int = 0  # games already present in ``out`` from an earlier run
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # this process's CPU time (the fair figure on a busy machine)

    @property
    def n_kept(self) -> int:
        return sum(self.kept.values())

    def solvable_fraction(self, task_type: str) -> float:
        done = self.attempts[task_type]
        return (done - self.unsolvable[task_type]) / done if done else float("nan")

    @property
    def games_per_minute(self) -> float:
        new = self.n_kept - self.reused
        return 60.0 * new / self.seconds if self.seconds > 0 else float("nan")


# --------------------------------------------------------------------------- alfworld access


def _alfworld_dir() -> Path:
    """The installed alfworld package folder, found without importing it.

    Importing ``alfworld`` (via ``alfworld.info``) creates ``~/.cache/alfworld`` when
    ALFWORLD_DATA is unset, so the generator only reads its files.
    """
    import importlib.util

    spec = importlib.util.find_spec("alfworld")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            "alfworld", extra="envs", why="ALFWorld games need the alfworld engine"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@contextlib.contextmanager
def quiet_alfworld_import() -> Iterator[None]:
    """Import alfworld modules without leaving ``~/.cache/alfworld`` or ALFWORLD_DATA behind."""
    had = "ALFWORLD_DATA" in os.environ
    if not had:
        # alfworld.info runs os.makedirs on this path; an existing dir makes it a no-op.
        os.environ["ALFWORLD_DATA"] = str(_alfworld_dir() / "data")
    try:
        yield
    finally:
        if not had:
            os.environ.pop("ALFWORLD_DATA", None)


def _constants() -> Any:
    with quiet_alfworld_import():
        import alfworld.gen.constants as constants
    return constants


def _goal_library() -> dict[str, Any]:
    with quiet_alfworld_import():
        import alfworld.gen.goal_library as glib
    return glib.gdict


# --------------------------------------------------------------------------- scene model


@dataclass
class _Scene:
    number: int
    object_types: list[str]
    receptacle_poses: dict[str, list[float]]  # THOR id -> [x, z, rotation, horizon]
    points: list[tuple[float, float]]  # navigable floor points


def _load_scene(layouts: Path, number: int) -> _Scene:
    import numpy as np

    base = layouts / f"FloorPlan{number}"
    objects = json.loads(Path(f"{base}-objects.json").read_text())
    poses = json.loads(Path(f"{base}-openable.json").read_text())
    points = [(float(x), float(z)) for x, z in np.load(f"{base}-layout.npy")]
    return _Scene(number, objects, poses, points)


def _scenes_for(split: str, task_type: str) -> list[int]:
    nums = _UNSEEN if split == "valid_unseen" else _SEEN
    return [_ROOM_BASE[room] + i for room in _ROOMS[task_type] for i in nums]


def _in_split(split: str, key: str) -> bool:
    """Fixed partition of the seen-scene task space between train and valid_seen."""
    if split == "valid_unseen":
        return True
    bucket = int(hashlib.sha1(key.encode()).hexdigest(), 16) % 10
    return (bucket < 2) == (split == "valid_seen")


def _thor_id(kind: str, x: float, y: float, z: float) -> str:
    return f"{kind}|{x:+06.2f}|{y:+06.2f}|{z:+06.2f}"


def _pddl_name(thor_id: str) -> str:
    # The official mangling (PlannedGameState.fix_pddl_str_chars); the demangler undoes it.
    out = []
    table = {"-": "_minus_", "|": "_bar_", "+": "_plus_", ".": "_dot_", ",": "_comma_"}
    for ch in thor_id:
        out.append(table.get(ch, ch))
    return "".join(out)


def _loc(x: float, z: float, rot: float, horizon: float) -> str:
    return f"loc|{round(x / 0.25)}|{round(z / 0.25)}|{round(rot / 90) % 4}|{round(horizon)}"


@dataclass
class _Task:
    task_type: str
    scene: int
    obj: str
    recep: str  # target receptacle type ("" for look_at_obj_in_light)
    toggle: str  # lamp type ("" unless look_at_obj_in_light)

    @property
    def key(self) -> str:
        return f"{self.task_type}|{self.obj}|{self.recep or self.toggle}|{self.scene}"

    @property
    def folder(self) -> str:
        return f"{self.task_type}-{self.obj}-None-{self.recep or self.toggle}-{self.scene}"


class _Builder:
    """Samples tasks and writes the official file pair for one game."""

    def __init__(self) -> None:
        self.c = _constants()
        self.goals = _goal_library()
        self.root = _alfworld_dir()
        self.layouts = self.root / "gen" / "layouts"
        self._scenes: dict[int, _Scene] = {}
        c = self.c
        placeable = set().union(*c.VAL_RECEPTACLE_OBJECTS.values())
        # Things that can be picked up and put somewhere (slices are not in any task here).
        self.pickupable = {o for o in placeable if "Sliced" not in o} - set(
            c.RECEPTACLES - c.MOVABLE_RECEPTACLES_SET
        )
        self.static_receptacles = set(c.RECEPTACLES) - c.MOVABLE_RECEPTACLES_SET

    def scene(self, number: int) -> _Scene:
        if number not in self._scenes:
            self._scenes[number] = _load_scene(self.layouts, number)
        return self._scenes[number]

    def receptacle_types(self, scene: _Scene) -> set[str]:
        kinds = {k.split("|")[0] for k in scene.receptacle_poses}
        kinds = {_BASINS.get(k, k) for k in kinds}
        kinds |= {t for t in scene.object_types if t in self.static_receptacles}
        return kinds & self.static_receptacles

    def can_hold(self, recep: str, obj: str) -> bool:
        return obj in self.c.VAL_RECEPTACLE_OBJECTS.get(recep, ())

    # ------------------------------------------------------------------ task sampling
    def sample_task(self, rng: random.Random, split: str, task_type: str) -> _Task | None:
        scene_num = rng.choice(_scenes_for(split, task_type))
        scene = self.scene(scene_num)
        receps = self.receptacle_types(scene)
        objs = sorted(set(scene.object_types) & self.pickupable)
        toggle = ""
        if task_type == "look_at_obj_in_light":
            lamps = [t for t in _LAMPS if t in scene.object_types]
            if not lamps or not receps & set(_LAMP_HOLDERS):
                return None
            toggle = rng.choice(lamps)
            candidates = [(o, "") for o in objs if any(self.can_hold(r, o) for r in receps)]
        else:
            need = _APPLIANCE.get(task_type)
            if need:
                appliance, prop = need
                if appliance not in receps:
                    return None
                objs = [o for o in objs if o in self.c.VAL_ACTION_OBJECTS[prop]]
            targets = sorted(receps - ({need[0]} if need else set()))
            candidates = [(o, r) for o in objs for r in targets if self.can_hold(r, o)]
            # The object must also have somewhere else to start from.
            candidates = [
                (o, r) for o, r in candidates if any(self.can_hold(x, o) for x in receps - {r})
            ]
        if not candidates:
            return None
        obj, recep = rng.choice(candidates)
        task = _Task(task_type, scene_num, obj, recep, toggle)
        return task if _in_split(split, task.key) else None

    # ------------------------------------------------------------------ problem writing
    def build(self, rng: random.Random, task: _Task) -> tuple[str, dict[str, Any]]:
        """Return (initial_state.pddl text, traj_data dict) for a sampled task."""
        scene = self.scene(task.scene)
        receps: dict[str, tuple[str, str]] = {}  # thor id -> (type, location)
        for thor_id, (x, z, rot, hor) in sorted(scene.receptacle_poses.items()):
            kind = thor_id.split("|")[0]
            if kind in _BASINS:
                thor_id, kind = f"{thor_id}|{_BASINS[kind]}", _BASINS[kind]
            if kind in self.static_receptacles:
                receps[thor_id] = (kind, _loc(x, z, rot, hor))
        have = {k for k, _ in receps.values()}
        for kind in sorted(self.receptacle_types(scene) - have):
            count = rng.randint(2, 4) if kind == "StoveBurner" else 1
            for _ in range(count):
                x, z = rng.choice(scene.points)
                y = rng.uniform(0.0, 1.2)
                base = _thor_id(
                    "Sink"
                    if kind == "SinkBasin"
                    else "Bathtub"
                    if kind == "BathtubBasin"
                    else kind,
                    x,
                    y,
                    z,
                )
                thor_id = f"{base}|{kind}" if kind in ("SinkBasin", "BathtubBasin") else base
                receps[thor_id] = (
                    kind,
                    _loc(x, z, rng.choice((0, 90, 180, 270)), rng.choice((30, 45, 60))),
                )

        # Objects: the target type (1-3 instances, 2+ for pick-two) plus a dozen or so
        # distractor types (1-2 each), in receptacles that can hold them, never already
        # satisfying the goal. Real ALFWorld rooms hold ~20-30 objects; more only slows
        # the engine's grounding down.
        objects: dict[str, tuple[str, str]] = {}  # thor id -> (type, receptacle id)
        others = sorted(set(scene.object_types) & self.pickupable - {task.obj})
        rng.shuffle(others)
        for otype in [task.obj, *sorted(others[: rng.randint(8, 14)])]:
            hosts = [r for r, (k, _) in receps.items() if self.can_hold(k, otype)]
            if otype == task.obj and task.recep:
                hosts = [r for r in hosts if receps[r][0] != task.recep]
            if not hosts:
                continue
            if otype == task.obj:
                count = rng.randint(2 if task.task_type == "pick_two_obj_and_place" else 1, 3)
            else:
                count = rng.choice((1, 1, 2))
            for _ in range(count):
                host = rng.choice(hosts)
                objects[self._fresh_id(rng, otype, objects)] = (otype, host)
        if task.toggle:
            hosts = [r for r, (k, _) in receps.items() if k in _LAMP_HOLDERS]
            # A lamp on furniture that shares its spot with another receptacle is not
            # described where the agent arrives; the expert then wanders. Prefer a spot of its own.
            spots = Counter(loc for _, loc in receps.values())
            hosts = [r for r in hosts if spots[receps[r][1]] == 1] or hosts
            objects[self._fresh_id(rng, task.toggle, objects)] = (task.toggle, rng.choice(hosts))
        if not any(t == task.obj for t, _ in objects.values()):
            raise InvalidInput(f"could not place a {task.obj} in FloorPlan{task.scene}")

        x, z = rng.choice(scene.points)
        agent_loc = _loc(x, z, rng.choice((0, 90, 180, 270)), 30)
        pddl = self._problem_text(task, receps, objects, agent_loc, rng)
        traj = self._traj_data(task, rng)
        return pddl, traj

    def _fresh_id(self, rng: random.Random, otype: str, taken: dict[str, Any]) -> str:
        while True:
            oid = _thor_id(otype, rng.uniform(-3, 3), rng.uniform(0, 2), rng.uniform(-3, 3))
            if oid not in taken:
                return oid

    def _problem_text(
        self,
        task: _Task,
        receps: dict[str, tuple[str, str]],
        objects: dict[str, tuple[str, str]],
        agent_loc: str,
        rng: random.Random,
    ) -> str:
        c = self.c
        n = _pddl_name
        locations = sorted({loc for _, loc in receps.values()} | {agent_loc})
        otypes = sorted(set(c.OBJECTS_SET) - self.static_receptacles)
        rtypes = sorted(self.static_receptacles)
        decl = ["agent1 - agent"]
        decl += [f"{t} - object" for t in otypes]
        decl += [f"{t}Type - otype" for t in otypes]
        decl += [f"{t}Type - rtype" for t in rtypes]
        decl += [f"{n(o)} - object" for o in sorted(objects)]
        decl += [f"{n(r)} - receptacle" for r in sorted(receps)]
        decl += [f"{n(loc)} - location" for loc in locations]

        init: list[str] = []
        init += [f"(receptacleType {n(r)} {k}Type)" for r, (k, _) in sorted(receps.items())]
        init += [f"(objectType {n(o)} {t}Type)" for o, (t, _) in sorted(objects.items())]
        present = sorted({t for t, _ in objects.values()})
        contain = sorted(
            {(k, t) for k, _ in receps.values() for t in present if self.can_hold(k, t)}
        )
        init += [f"(canContain {k}Type {t}Type)" for k, t in contain]
        for o, (t, _) in sorted(objects.items()):
            if t in self.pickupable:
                init.append(f"(pickupable {n(o)})")
            if t in c.MOVABLE_RECEPTACLES_SET:
                init.append(f"(isReceptacleObject {n(o)})")
            for prop, pred in (
                ("Cleanable", "cleanable"),
                ("Heatable", "heatable"),
                ("Coolable", "coolable"),
                ("Toggleable", "toggleable"),
                ("Sliceable", "sliceable"),
            ):
                if t in c.VAL_ACTION_OBJECTS[prop]:
                    init.append(f"({pred} {n(o)})")
        init += [
            f"(openable {n(r)})"
            for r, (k, _) in sorted(receps.items())
            if k in c.OPENABLE_CLASS_SET
        ]
        init.append(f"(atLocation agent1 {n(agent_loc)})")
        init += [f"(inReceptacle {n(o)} {n(host)})" for o, (_, host) in sorted(objects.items())]
        init += [
            f"(receptacleAtLocation {n(r)} {n(loc)})" for r, (_, loc) in sorted(receps.items())
        ]
        init += [
            f"(objectAtLocation {n(o)} {n(receps[host][1])})"
            for o, (_, host) in sorted(objects.items())
        ]

        goal = (
            self.goals[task.task_type]["pddl"]
            .format(obj=task.obj, recep=task.recep, toggle=task.toggle, mrecep="")
            .replace("#", "-")
        )
        pad = "\n        "
        return (
            f"\n(define (problem plan_{task.folder.replace('-', '_')})\n(:domain alfred)\n(:objects\n"
            + pad.join(decl)
            + "\n        )\n\n(:init\n        "
            + pad.join(init)
            + "\n        )\n"
            + goal
            + "\n"
        )

    def _traj_data(self, task: _Task, rng: random.Random) -> dict[str, Any]:
        templates = self.goals[task.task_type]["templates"]
        fill = {
            "obj": task.obj.lower(),
            "recep": task.recep.lower(),
            "toggle": task.toggle.lower(),
            "mrecep": "",
        }
        anns = [
            {
                "task_desc": t.format(**fill).capitalize() + ".",
                "high_descs": [],
                "assignment_id": "generated",
            }
            for t in templates
        ]
        return {
            "task_type": task.task_type,
            "task_id": f"trial_{task.folder}",
            "pddl_params": {
                "object_target": task.obj,
                "parent_target": task.recep,
                "toggle_target": task.toggle,
                "mrecep_target": "",
                "object_sliced": False,
            },
            "scene": {
                "floor_plan": f"FloorPlan{task.scene}",
                "scene_num": task.scene,
                "random_seed": rng.randrange(2**31),
            },
            "turk_annotations": {"anns": anns},
            "plan": {"high_pddl": [], "low_actions": []},
            "images": [],
            "memp_generated": True,
        }


# --------------------------------------------------------------------------- conversion + expert


@contextlib.contextmanager
def seeded_global_random(seed: int) -> Iterator[None]:
    """The official helpers draw from the global ``random``; pin it, then restore it."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


class ExpertRunner:
    """Plays a game file with the official hand-coded expert (as ``alfworld-generate`` does)."""

    def __init__(self, max_steps: int = 200) -> None:
        with quiet_alfworld_import():
            import textworld
            from alfworld.agents.environment.alfred_tw_env import (
                AlfredDemangler,
                AlfredExpert,
                AlfredInfos,
            )
            from textworld.envs import PddlEnv
        infos = textworld.EnvInfos(admissible_commands=True, won=True, extras=["gamefile"])
        env = AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))
        self.env = AlfredExpert(env, expert_type="handcoded")
        self.max_steps = max_steps

    def solve(self, game_file: str | Path, seed: int = 0) -> tuple[list[str] | None, str]:
        """Return (walkthrough, "") when the expert wins, else (None, why)."""
        actions: list[str] = []
        with seeded_global_random(seed):
            try:
                self.env.load(str(game_file))
                state = self.env.reset()
                for _ in range(self.max_steps):
                    if state["won"]:
                        return actions, ""
                    action = state["extra.expert_plan"][0]
                    state, _, _done = self.env.step(action)
                    actions.append(action)
                if state["won"]:
                    return actions, ""
                return None, f"expert did not win within {self.max_steps} steps"
            except Exception as exc:  # the expert signals a dead end by raising
                return None, f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.env.close()


def write_game(folder: Path, pddl: str, traj: dict[str, Any], rng_seed: int) -> Path:
    """Write initial_state.pddl + traj_data.json and convert them to game.tw-pddl.

    The conversion is the official one: the domain and grammar from the wheel, the
    task sentence put into the grammar by ``add_task_to_grammar``.
    """
    with quiet_alfworld_import():
        from alfworld.agents.utils.misc import add_task_to_grammar
    data_dir = _alfworld_dir() / "data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "initial_state.pddl").write_text(pddl)
    (folder / "traj_data.json").write_text(json.dumps(traj, indent=1))
    with seeded_global_random(rng_seed):
        grammar = add_task_to_grammar(
            (data_dir / "alfred.twl2").read_text(),
            traj,
            goal_desc_human_anns_prob=0.0,
            rng=random.Random(rng_seed),
        )
    game = {
        "pddl_domain": (data_dir / "alfred.pddl").read_text(),
        "grammar": grammar,
        "pddl_problem": pddl,
        "solvable": None,
        "walkthrough": None,
    }
    path = folder / "game.tw-pddl"
    path.write_text(json.dumps(game))
    return path


def _mark(path: Path, walkthrough: list[str] | None) -> None:
    game = json.loads(path.read_text())
    game["solvable"] = walkthrough is not None
    game["walkthrough"] = walkthrough
    path.write_text(json.dumps(game))


# --------------------------------------------------------------------------- the driver


def _trial(seed: int, slot: int) -> str:
    return f"trial_memp_s{seed}_{slot:05d}"


def _slot_seed(split: str, seed: int, slot: int, attempt: int) -> int:
    digest = hashlib.sha256(f"memp-alfworld|{split}|{seed}|{slot}|{attempt}".encode()).hexdigest()
    return int(digest[:15], 16)


def existing_games(out: Path) -> list[Path]:
    """Solvable generated games in ``out``, in episode order."""
    games = []
    for path in sorted(out.rglob("game.tw-pddl")):
        try:
            if json.loads(path.read_text()).get("solvable"):
                games.append(path)
        except (OSError, json.JSONDecodeError):
            continue
    return games


@dataclass
class _SlotResult:
    slot: int
    task_type: str
    kept: bool
    reused: bool = False
    attempts: int = 0
    reasons: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0


class _SlotMaker:
    """Makes the game of one slot: sample, write, convert, check with the expert, retry."""

    def __init__(self, expert_max_steps: int) -> None:
        self.builder = _Builder()
        self.runner = ExpertRunner(max_steps=expert_max_steps)

    def make(
        self, split: str, seed: int, slot: int, task_type: str, out_dir: Path, max_attempts: int
    ) -> _SlotResult:
        cpu = time.process_time()
        result = _SlotResult(slot, task_type, kept=False)
        slot_dir = out_dir / task_type
        done = (
            sorted(slot_dir.glob(f"*/{_trial(seed, slot)}/game.tw-pddl"))
            if slot_dir.exists()
            else []
        )
        if done and json.loads(done[0].read_text()).get("solvable"):
            result.kept = result.reused = True
            return result
        for attempt in range(max_attempts * 50):
            if result.attempts >= max_attempts:
                break
            s = _slot_seed(split, seed, slot, attempt)
            rng = random.Random(s)
            task = self.builder.sample_task(rng, split, task_type)
            if task is None:
                continue  # the scene lacks what the task needs, or the task belongs to the other split
            pddl, traj = self.builder.build(rng, task)
            folder = slot_dir / task.folder / _trial(seed, slot)
            game_path = write_game(folder, pddl, traj, s)
            walkthrough, why = self.runner.solve(game_path, seed=s)
            _mark(game_path, walkthrough)
            result.attempts += 1
            if walkthrough is not None:
                result.kept = True
                break
            result.reasons.append(why)
            # Drop the unsolvable game so the folder only holds playable ones.
            shutil.rmtree(folder)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()  # only succeeds when empty
        result.cpu_seconds = time.process_time() - cpu
        return result

    def close(self) -> None:
        self.runner.close()


_WORKER: _SlotMaker | None = None


def _worker_init(expert_max_steps: int) -> None:
    global _WORKER
    _WORKER = _SlotMaker(expert_max_steps)


def _worker_make(args: tuple[Any, ...]) -> _SlotResult:
    assert _WORKER is not None
    return _WORKER.make(*args)


def generate(
    split: str,
    n: int,
    seed: int = 0,
    out: str | Path | None = None,
    *,
    task_types: Sequence[str] | None = None,
    workers: int = 1,
    max_attempts_per_game: int = 12,
    expert_max_steps: int = 200,
    progress: bool = True,
    on_game: Callable[[str, bool], None] | None = None,
) -> GenerationReport:
    """Generate ``n`` solvable ALFWorld-like games of ``split`` into ``out``.

    Games are assigned to task types round-robin (slot ``i`` gets type ``i % k`` of the
    ``k`` requested types), and each slot is retried with fresh seeds until the expert
    solves its game, so the result is balanced and deterministic in (split, seed, n),
    whatever ``workers`` is. Rerunning with a larger ``n`` keeps the games already there.
    """
    from memp.errors import check_choice

    check_choice("split", split, SPLITS)
    types = list(task_types or TASK_TYPES)
    for t in types:
        check_choice("task type", t, TASK_TYPES)
    if n < 1:
        raise InvalidInput(f"--n must be at least 1 (got {n})")
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1 (got {workers})")
    _alfworld_dir()  # fail early with an install hint
    out_dir = Path(out).expanduser() if out is not None else default_cache_dir(split, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = GenerationReport(split=split, seed=seed, out=out_dir)
    manifest = {
        "generator": "memp.envs.alfworld_gen",
        "version": GENERATOR_VERSION,
        "split": split,
        "seed": seed,
        "alfworld_like": True,
        "label": "ALFWorld-like",
    }
    old = out_dir / MANIFEST
    if old.exists():
        prev = json.loads(old.read_text())
        if prev.get("version") != GENERATOR_VERSION:
            raise InvalidInput(
                f"{out_dir} holds games of an older generator (version {prev.get('version')}); "
                "delete that folder or use another --out"
            )
        if (prev.get("split"), prev.get("seed")) != (split, seed):
            raise InvalidInput(
                f"{out_dir} already holds games of split {prev.get('split')!r} seed {prev.get('seed')!r}; "
                "use another --out (splits must not share games)"
            )
    old.write_text(json.dumps(manifest, indent=1))

    jobs = [
        (split, seed, slot, types[slot % len(types)], out_dir, max_attempts_per_game)
        for slot in range(n)
    ]
    start, cpu_start = time.perf_counter(), time.process_time()
    bar_ctx: Any = contextlib.nullcontext()
    if progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        bar_ctx = Progress(
            TextColumn("[bold]alfworld {task.fields[split]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
        )
    child_cpu = 0.0
    with bar_ctx as bar:
        bar_id = bar.add_task("gen", total=n, split=split, note="") if bar is not None else None

        def record(r: _SlotResult) -> None:
            nonlocal child_cpu
            report.kept[r.task_type] += int(r.kept)
            report.reused += int(r.reused)
            report.attempts[r.task_type] += r.attempts
            report.unsolvable[r.task_type] += len(r.reasons)
            report.reasons.update(r.reasons)
            if not r.kept and not r.reused:
                report.failed_slots.append(r.slot)
            if on_game is not None and not r.reused:
                on_game(r.task_type, r.kept)
            if bar is not None:
                note = f"{sum(report.unsolvable.values())} unsolvable dropped"
                bar.update(bar_id, advance=1, note=note)

        if workers == 1:
            maker = _SlotMaker(expert_max_steps)
            try:
                for job in jobs:
                    record(maker.make(*job))
            finally:
                maker.close()
        else:
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(
                workers, initializer=_worker_init, initargs=(expert_max_steps,)
            ) as pool:
                futures = [pool.submit(_worker_make, job) for job in jobs]
                for fut in as_completed(futures):
                    r = fut.result()
                    child_cpu += r.cpu_seconds
                    record(r)
    report.seconds = time.perf_counter() - start
    report.cpu_seconds = time.process_time() - cpu_start + child_cpu
    return report
