"""Reuse of finished units across runs (``memp run --reuse RUN_DIR``).

Studies often share units: the no-memory baseline on the same games with the same model,
agent settings and seeds, or a memory built from the same expert trajectories. Replaying
one costs as much as the first time (an hour of local-LLM time), so a run can copy them
from earlier runs instead.

A unit is copied only when its *identity* matches: a digest of everything that changes
what the unit measures (environment, split and options, policy settings, model, seed,
the memory it reads...) and nothing that is just a label (experiment, condition and
environment names, executor settings). Identities are computed from each run's stored
config, so the source run's own labels do not matter either.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from memp.errors import InvalidInput, MempError
from memp.experiment.config import Arm, EnvConfig, ExperimentConfig
from memp.experiment.rundb import RunDB
from memp.types import Trajectory

# Part of every digest: a change to what an identity covers must not match old digests.
IDENTITY_VERSION = 1

# Settings a condition without memory never reads in prompt mode (the ReAct agent gets
# no memory, so no retrieval): dropped so that `condition_defaults` such as k = 2 in
# one study do not keep its baseline from matching another study's.
_MEMORY_ONLY = (
    "retrieve",
    "k",
    "min_score",
    "budget_tokens",
    "use_llm",
    "skill",
    "update_options",
    "start",
    "source",
    "builder",
)


def _digest(kind: str, data: dict[str, Any]) -> str:
    blob = json.dumps(
        {"kind": kind, "v": IDENTITY_VERSION, **data},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _train_side(env: EnvConfig) -> dict[str, Any]:
    return {
        "env": env.name,
        "train_split": env.train_split,
        "train_options": env.options_for(env.train_split),
    }


def _agent(cfg: ExperimentConfig, env: EnvConfig) -> dict[str, Any]:
    return env.agent_config(cfg.agent).model_dump(mode="json")


def collect_identity(cfg: ExperimentConfig, env: EnvConfig, source: str, episode: int) -> str:
    """One training episode played by a memory source."""
    return _digest(
        "collect",
        {
            **_train_side(env),
            "source": source,
            "agent": _agent(cfg, env),
            "seed": env.episode_seed(cfg.seed, "train", episode),
            "episode": episode,
        },
    )


def memory_identity(
    cfg: ExperimentConfig, env: EnvConfig, source: str, build: str, builder: str
) -> str:
    """One built memory: its training episodes and how they were turned into procedures."""
    return _digest(
        "memory",
        {
            **_train_side(env),
            "collect": [collect_identity(cfg, env, source, e) for e in env.train_indices()],
            "build": build,
            "builder": builder,
            "embedder": cfg.embedder,
            "distill": cfg.distill,
        },
    )


def arm_memory_identity(cfg: ExperimentConfig, env: EnvConfig, arm: Arm) -> str | None:
    """The memory an arm starts from (None: no memory, or one that starts empty)."""
    c = arm.condition
    if c.memory == "none" or c.start != "train":
        return None
    return memory_identity(cfg, c.memory_env(env, cfg.env), c.source, c.memory_kind, arm.builder)


def _condition(arm: Arm) -> dict[str, Any]:
    c = arm.condition
    # which blocks an arm plays is where, not what: an episode's identity leaves it out
    data = c.model_dump(mode="json", exclude={"name", "model", "envs", "memory_from"})
    if not c.uses_memory and c.mode == "prompt":
        for key in _MEMORY_ONLY:
            data.pop(key, None)
    return data


def eval_identity(cfg: ExperimentConfig, env: EnvConfig, arm: Arm, episode: int, group: int) -> str:
    """One held-out episode played under one arm."""
    c = arm.condition
    data: dict[str, Any] = {
        "memory": arm_memory_identity(cfg, env, arm),
        "env": env.name,
        "eval_split": env.eval_split,
        "eval_options": env.options_for(env.eval_split),
        "condition": _condition(arm),
        "model": arm.model,
        "agent": _agent(cfg, env),
        "seed": env.episode_seed(cfg.seed, "eval", episode),
        "episode": episode,
    }
    if c.uses_memory:
        # Without memory there is nothing to embed or distill and no training side.
        data.update(_train_side(env), embedder=cfg.embedder, distill=cfg.distill)
    if env.folds and c.uses_memory:
        # The episode read its fold's memory: the same folds over the same episodes.
        data.update(folds=env.folds, fold_episodes=env.eval_indices())
    if c.update != "none":
        # Updates make an episode depend on the episodes of the groups before it.
        data.update(groups=cfg.groups, eval_indices=env.eval_indices(), group=group)
    return _digest("eval", data)


def reusable_eval(arm: Arm, group: int) -> bool:
    """Whether an eval episode may be copied at all.

    After group 0 an updating arm reads memory this run's own updates wrote (updates are
    not copied, and an LLM update need not repeat), so those episodes are played.
    """
    return arm.condition.update == "none" or group == 0


# What a run's meta "reused" counts, per source run, and how each is named.
REUSE_KINDS = {
    "eval": ("evaluation episode", "evaluation episodes"),
    "collect": ("training episode", "training episodes"),
    "memories": ("memory", "memories"),
}


def count_units(kind: str, n: int) -> str:
    one, many = REUSE_KINDS[kind]
    return f"{n} {one if n == 1 else many}"


def describe_reused(reused: dict[str, dict[str, int]]) -> str | None:
    """The report's line on copied units (None when nothing was copied)."""
    parts = []
    for run, counts in reused.items():
        items = [count_units(k, counts[k]) for k in REUSE_KINDS if counts.get(k)]
        if items:
            listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
            parts.append(f"{listed} from {run}")
    if not parts:
        return None
    return (
        "Copied from earlier runs instead of replayed (identical configuration of those "
        f"units, see `memp run --reuse`): {'; '.join(parts)}."
    )


# -- source runs -----------------------------------------------------------------


def run_dir(path: str | Path) -> Path:
    p = Path(path)
    return p.parent if p.name == "run.db" and p.is_file() else p


def check_sources(runs: list[str | Path], current: str | Path | None = None) -> list[Path]:
    """The run directories to reuse from; InvalidInput for anything that is not one."""
    hint = "pass the --out directory of an earlier `memp run` (the folder holding run.db)"
    here = Path(current).resolve() if current is not None else None
    out: list[Path] = []
    for r in runs:
        d = run_dir(r)
        if not d.exists():
            raise InvalidInput(f"--reuse {r}: no such directory; {hint}")
        if not (d / "run.db").is_file():
            raise InvalidInput(f"--reuse {r} is not a memp run directory (no run.db in it); {hint}")
        if here is not None and d.resolve() == here:
            raise InvalidInput(
                f"--reuse {r} is this run's own --out directory: re-running the same command "
                "already resumes it; pass another run's directory to --reuse"
            )
        if d.resolve() not in {o.resolve() for o in out}:
            out.append(d)
    return out


@dataclass(frozen=True)
class FoundEpisode:
    run: str  # the source run directory, as given
    trajectory: Trajectory
    wall_s: float


@dataclass(frozen=True)
class FoundMemory:
    run: str
    record: dict[str, Any]  # the source's memories row
    file: Path
    # The run that built the memory (a copy keeps its builder's): episodes played with
    # it may be copied to any run whose memory has the same root.
    root: str
    collect_ids: frozenset[str]  # trajectory ids it was built from (the source's collect rows)


@dataclass
class _Source:
    label: str
    root: str
    db: RunDB
    cfg: ExperimentConfig


class ReuseIndex:
    """Finished units of earlier runs, by identity (first run given wins on ties)."""

    def __init__(self, runs: list[str | Path], *, current: str | Path | None = None) -> None:
        self.sources: list[_Source] = []
        self._collect: dict[str, tuple[int, int, float]] = {}  # -> (source, row id, wall_s)
        self._eval: dict[str, list[tuple[int, int, float, str | None]]] = {}  # + memory root
        self._memory: dict[str, tuple[int, dict[str, Any], Path, str]] = {}
        try:
            for d in check_sources(runs, current):
                self._add(d)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for s in self.sources:
            s.db.close()
        self.sources = []

    def __enter__(self) -> ReuseIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add(self, d: Path) -> None:
        try:
            db = RunDB.open_existing(d)
        except MempError as e:
            raise InvalidInput(f"--reuse {d}: cannot open its run database ({e})") from None
        i = len(self.sources)
        try:
            raw = db.get_meta("config")
            if raw is None:
                raise InvalidInput(
                    f"--reuse {d}: the run stored no experiment config (it never started); "
                    "pass a run that has finished episodes"
                )
            try:
                cfg = ExperimentConfig.model_validate(raw)
            except ValidationError as e:
                raise InvalidInput(
                    f"--reuse {d}: its stored config is not valid for this memp version "
                    f"({e.error_count()} error(s)); it cannot be matched, leave it out"
                ) from None
        except BaseException:
            db.close()
            raise
        root = str(d.resolve())
        self.sources.append(_Source(label=str(d), root=root, db=db, cfg=cfg))
        envs = {e.key: e for e in cfg.env}
        arms = {a.label: a for a in cfg.arms()}

        for r in db.episodes(phase="collect"):
            env = envs.get(r.env)
            if env is not None:
                ident = collect_identity(cfg, env, r.arm, r.episode)
                self._collect.setdefault(ident, (i, r.id, r.wall_s))

        origins: dict[str, str] = db.get_meta("memory_origin") or {}
        mem_roots: dict[str, str] = {}
        for m in db.memories():
            env = envs.get(m["env"])
            if env is None:
                continue
            ident = memory_identity(cfg, env, m["source"], m["build"], m["builder"])
            name = Path(m["path"]).name
            mem_roots[ident] = origins.get(name, root)
            file = d / "memory" / name
            if file.is_file():
                self._memory.setdefault(ident, (i, m, file, mem_roots[ident]))

        cache: dict[tuple[str, str], str | None] = {}
        for r in db.episodes(phase="eval"):
            env, arm = envs.get(r.env), arms.get(r.arm)
            if env is None or arm is None:
                continue  # the condition or env left that run's config: its identity is unknown
            if (r.env, r.arm) not in cache:
                mid = arm_memory_identity(cfg, env, arm)
                cache[(r.env, r.arm)] = None if mid is None else mem_roots.get(mid, root)
            ident = eval_identity(cfg, env, arm, r.episode, r.group)
            self._eval.setdefault(ident, []).append((i, r.id, r.wall_s, cache[(r.env, r.arm)]))

    # -- lookups -------------------------------------------------------------------
    def collect(self, identity: str) -> FoundEpisode | None:
        hit = self._collect.get(identity)
        if hit is None:
            return None
        s = self.sources[hit[0]]
        return FoundEpisode(s.label, s.db.trajectory(hit[1]), hit[2])

    def episode(self, identity: str, memory_root: str | None = None) -> FoundEpisode | None:
        """An eval episode; with memory, only one played with a copy of the same memory."""
        for i, row, wall_s, root in self._eval.get(identity, ()):
            if memory_root is None or root == memory_root:
                s = self.sources[i]
                return FoundEpisode(s.label, s.db.trajectory(row), wall_s)
        return None

    def memory(self, identity: str) -> FoundMemory | None:
        hit = self._memory.get(identity)
        if hit is None:
            return None
        i, rec, file, root = hit
        s = self.sources[i]
        ids = frozenset(
            t.id for t in s.db.trajectories(phase="collect", env=rec["env"], arm=rec["source"])
        )
        return FoundMemory(s.label, rec, file, root, ids)
