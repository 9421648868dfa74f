"""The experiment runner: collect -> build -> evaluate (-> update between groups) -> report.

1. Collect: the memory sources (the expert, or an LLM without memory for transfer) play
   the training split.
2. Build: one memory per (environment, source, build strategy, builder model), from the
   successful training trajectories, each a SQLite file in the run directory.
3. Evaluate: every condition plays the held-out split. With ``groups > 1`` the split is
   played in successive groups and conditions with an update strategy update a copy of
   their memory after each group (the learning curve).
4. Report: Markdown, HTML with plots, JSON.

Every finished unit (episode, memory, update) is recorded in the run database as it
completes, so an interrupted run resumes where it stopped when the same command is
re-run. Only this process writes the run database.

With ``reuse``, units whose identity matches a finished unit of another run (see
memp.experiment.reuse) are copied from it instead of being played or built again.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from memp.errors import InvalidInput
from memp.experiment.config import BUILD_STRATEGIES, Arm, EnvConfig, ExperimentConfig
from memp.experiment.executors import ExecutorProtocol, make_executor
from memp.experiment.reuse import (
    REUSE_KINDS,
    ReuseIndex,
    arm_memory_identity,
    check_sources,
    collect_identity,
    count_units,
    eval_identity,
    memory_identity,
    reusable_eval,
)
from memp.experiment.rundb import EpisodeRow, RunDB
from memp.experiment.worker import (
    BuildTask,
    CollectTask,
    EpisodeTask,
    Task,
    TaskResult,
    UpdateTask,
)
from memp.types import Trajectory


def _slug(*parts: str) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9._-]+", "-", p) for p in parts)


def split_groups(indices: list[int], groups: int) -> list[list[int]]:
    """Contiguous, near-equal groups (the first ones get the remainder)."""
    n = len(indices)
    out, start = [], 0
    for g in range(groups):
        size = n // groups + (1 if g < n % groups else 0)
        out.append(indices[start : start + size])
        start += size
    return out


class _Shared:
    """Units several blocks of one run have in common: played once, recorded under each."""

    def __init__(self) -> None:
        self.blocks: dict[str, list[Any]] = {}  # task key -> the blocks it is recorded under
        self._task: dict[str, str] = {}  # identity -> key of the task that plays it

    def joins(self, identity: str | None, block: Any) -> bool:
        """Whether a task already plays this unit; if so the block is recorded with it."""
        key = self._task.get(identity) if identity is not None else None
        if key is None:
            return False
        self.blocks[key].append(block)
        return True

    def plays(self, identity: str | None, task_key: str, block: Any) -> None:
        if identity is not None:
            self._task[identity] = task_key
        self.blocks[task_key] = [block]


class Runner:
    def __init__(
        self,
        config: ExperimentConfig,
        out: str | Path,
        *,
        executor: str | None = None,
        workers: int | None = None,
        address: str | None = None,
        console: Console | None = None,
        progress: bool = True,
        reuse: list[str | Path] | None = None,
    ) -> None:
        self.config = config
        self.out = Path(out)
        self.executor_name = executor or config.executor
        self.workers = workers if workers is not None else config.workers
        self.address = address or config.address
        self.console = console or Console(stderr=True)
        self.show_progress = progress
        self.arms = config.arms()
        self._executor: ExecutorProtocol | None = None
        self._no_memory: set[str] = set()  # memories that could not be built
        self.reuse_from = list(reuse or [])
        self._index: ReuseIndex | None = None
        self._reused: dict[str, dict[str, int]] = {}  # this invocation: run -> kind -> n

    # -- paths ------------------------------------------------------------------
    def memory_path(self, env: EnvConfig, arm: Arm, fold: int | None = None) -> str:
        """The arm's memory when it plays ``env`` (built on its ``memory_from`` block, if
        it names one); with ``fold``, the copy that holds nothing of that fold."""
        c = arm.condition
        env = c.memory_env(env, self.config.env)
        name = _slug(env.key, c.source, c.memory_kind, arm.builder)
        if fold is not None:
            name += f"__fold{fold}"
        return str(self.out / "memory" / f"{name}.db")

    def arm_memory_path(self, env: EnvConfig, arm: Arm, group: int) -> str:
        return str(self.out / "memory" / "arms" / f"{_slug(env.key, arm.label)}__g{group}.db")

    # -- main -------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        with ExitStack() as stack:
            if self.reuse_from:
                # Opened first: a wrong --reuse is reported before anything is written.
                self._index = stack.enter_context(ReuseIndex(self.reuse_from, current=self.out))
            self.out.mkdir(parents=True, exist_ok=True)
            db = stack.enter_context(RunDB(self.out / "run.db"))
            self._check_same_experiment(db)
            with self._progress() as prog:
                try:
                    self._collect(db, prog)
                    self._build(db, prog)
                    self._evaluate(db, prog)
                finally:
                    if self._executor is not None:
                        self._executor.close()
                        self._executor = None
                    self._index = None
                    self._print_reused()
            db.set_meta("wall_s_last_invocation", time.perf_counter() - t0)
            from memp.experiment.report import write_report

            return write_report(db, self.out, config=self.config)

    def _check_same_experiment(self, db: RunDB) -> None:
        fp = self.config.fingerprint()
        old = db.get_meta("fingerprint")
        if old is not None and old != fp:
            raise InvalidInput(
                f"{self.out} already holds a run of a different experiment configuration "
                f"(fingerprint {old}, this one {fp}). Resume only works with the same config: "
                "pass another --out directory, or --fresh to delete the old run."
            )
        db.set_meta("fingerprint", fp)
        db.set_meta("config", self.config.model_dump(mode="json"))
        db.set_meta("name", self.config.name)
        if db.get_meta("started_at") is None:
            from datetime import UTC, datetime

            db.set_meta("started_at", datetime.now(UTC).isoformat(timespec="seconds"))

    # -- reuse ------------------------------------------------------------------
    def _count_reused(self, db: RunDB, run: str, kind: str) -> None:
        """Count one copied unit, in this invocation and in the run's meta (kept across resumes)."""
        mine = self._reused.setdefault(run, {})
        mine[kind] = mine.get(kind, 0) + 1
        total = db.get_meta("reused") or {}
        total.setdefault(run, {})
        total[run][kind] = total[run].get(kind, 0) + 1
        db.set_meta("reused", total)

    def _print_reused(self) -> None:
        for kind in REUSE_KINDS:
            for run, counts in self._reused.items():
                if counts.get(kind):
                    self.console.print(f"reused {count_units(kind, counts[kind])} from {run}")

    def _memory_root(self, db: RunDB, path: str) -> str:
        """The run that built this run's memory file (itself unless it was copied)."""
        origins = db.get_meta("memory_origin") or {}
        return origins.get(Path(path).name, str(self.out.resolve()))

    def _set_memory_origin(self, db: RunDB, path: str, root: str | None) -> None:
        origins = db.get_meta("memory_origin") or {}
        name = Path(path).name
        if origins.get(name) == root:
            return
        if root is None:
            origins.pop(name)
        else:
            origins[name] = root
        db.set_meta("memory_origin", origins)

    @property
    def uses_llm(self) -> bool:
        for arm in self.arms:
            c = arm.condition
            if (
                c.mode == "prompt"
                or c.use_llm
                or c.source != "expert"
                or c.memory in ("script", "proceduralization")
            ):
                return True
        return False

    def executor(self) -> ExecutorProtocol:
        if self._executor is None:
            self._executor = make_executor(
                self.executor_name,
                workers=self.workers,
                address=self.address,
                uses_llm=self.uses_llm,
            )
        return self._executor

    @contextmanager
    def _progress(self) -> Iterator[Progress]:
        prog = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.show_progress,
            transient=False,
        )
        with prog:
            yield prog

    def _drain(
        self, db: RunDB, tasks: list[Task], on_ok: Any, prog: Progress, bars: dict[str, TaskID]
    ) -> int:
        """Run tasks, record each result as it arrives; returns the number of failures."""
        if not tasks:
            return 0
        failures = 0
        for res in self.executor().run(tasks):
            bar = bars.get(_bar_key(res.task))
            if res.ok:
                note = on_ok(res)
                db.clear_error(res.key)
                if bar is not None:
                    prog.update(bar, advance=1, note=note or "")
            else:
                failures += 1
                db.add_error(res.key, res.error or "")
                first = (res.error or "").splitlines()[0] if res.error else ""
                self.console.print(f"[red]failed[/red] {res.key}: {first}")
                if bar is not None:
                    prog.update(bar, advance=1)
        return failures

    # -- 1. collect -------------------------------------------------------------
    def _sources(self) -> dict[str, set[str]]:
        need: dict[str, set[str]] = defaultdict(set)
        for env in self.config.env:
            for arm in self.arms:
                c = arm.condition
                if c.memory != "none" and c.start == "train" and c.plays_in(env.key):
                    need[c.memory_env(env, self.config.env).key].add(c.source)
        return need

    def _collect(self, db: RunDB, prog: Progress) -> None:
        cfg = self.config
        done = db.done_keys("collect")
        # Blocks that share training games (memory from 200 and from 1,000 games of one
        # split) share those episodes: each is played once and recorded under every block.
        finished = self._finished_by_identity(db, "collect")
        shared = _Shared()
        tasks: list[Task] = []
        bars: dict[str, TaskID] = {}
        for env in cfg.env:
            for source in sorted(self._sources().get(env.key, ())):
                eps = env.train_indices()
                todo: list[tuple[int, str]] = []
                for e in eps:
                    if (env.key, source, env.train_split, e) in done:
                        continue
                    ident = collect_identity(cfg, env, source, e)
                    if not (
                        self._copy_collect(db, env, source, e, finished.get(ident))
                        or self._reuse_collect(db, env, source, e, ident)
                    ):
                        todo.append((e, ident))
                bar = prog.add_task(
                    f"collect {env.key} [{source}]",
                    total=len(eps),
                    completed=len(eps) - len(todo),
                    note="",
                )
                bars[f"collect/{env.key}/{source}"] = bar
                for e, ident in todo:
                    if shared.joins(ident, (env, source, e)):
                        continue
                    task = CollectTask(
                        env=env,
                        source=source,
                        episode=e,
                        seed=env.episode_seed(cfg.seed, "train", e),
                        agent=env.agent_config(cfg.agent),
                        embedder=cfg.embedder,
                        distill=cfg.distill,
                    )
                    shared.plays(ident, task.key, (env, source, e))
                    tasks.append(task)

        def ok(res: TaskResult) -> str:
            traj = Trajectory.model_validate_json(res.value)
            for i, (env, source, e) in enumerate(shared.blocks[res.key]):
                self._add_collect(db, env, source, e, traj, res.wall_s)
                if i:  # the first block's bar is advanced by _drain
                    prog.update(bars[f"collect/{env.key}/{source}"], advance=1)
            return "won" if traj.success else "lost"

        self._drain(db, tasks, ok, prog, bars)

    def _add_collect(
        self, db: RunDB, env: EnvConfig, source: str, e: int, traj: Trajectory, wall_s: float
    ) -> None:
        db.add_episode(
            phase="collect",
            env=env.key,
            arm=source,
            model=None if source == "expert" else source,
            split=env.train_split,
            episode=e,
            group=0,
            seed=env.episode_seed(self.config.seed, "train", e),
            trajectory=traj,
            wall_s=wall_s,
        )
        db.clear_error(f"collect/{env.key}/{source}/{e}")

    def _identity(self, env: EnvConfig, phase: str, who: str, e: int, g: int = 0) -> str | None:
        """A unit's identity, or None for one that must be played (updated memory)."""
        if phase == "collect":
            return collect_identity(self.config, env, who, e)
        # Only episodes without memory are shared between blocks: a memory arm reads its
        # own block's memory file.
        arm = next((a for a in self.arms if a.label == who), None)
        if arm is None or arm_memory_identity(self.config, env, arm) is not None:
            return None
        return eval_identity(self.config, env, arm, e, g) if reusable_eval(arm, g) else None

    def _finished_by_identity(self, db: RunDB, phase: str) -> dict[str, EpisodeRow]:
        """This run's finished episodes by identity (what another block can share)."""
        envs = {env.key: env for env in self.config.env}
        out: dict[str, EpisodeRow] = {}
        for r in db.episodes(phase=phase):
            env = envs.get(r.env)
            ident = None if env is None else self._identity(env, phase, r.arm, r.episode, r.group)
            if ident is not None:
                out.setdefault(ident, r)
        return out

    def _copy_collect(
        self, db: RunDB, env: EnvConfig, source: str, e: int, row: EpisodeRow | None
    ) -> bool:
        """Record another block's finished twin of this training episode under this block."""
        if row is None:
            return False
        self._add_collect(db, env, source, e, db.trajectory(row.id), row.wall_s)
        return True

    def _reuse_collect(self, db: RunDB, env: EnvConfig, source: str, e: int, identity: str) -> bool:
        if self._index is None:
            return False
        found = self._index.collect(identity)
        if found is None:
            return False
        self._add_collect(db, env, source, e, found.trajectory, found.wall_s)
        self._count_reused(db, found.run, "collect")
        return True

    # -- 2. build ---------------------------------------------------------------
    def _build(self, db: RunDB, prog: Progress) -> None:
        tasks: list[Task] = []
        seen: set[str] = set()
        for played in self.config.env:
            for arm in self.arms:
                c = arm.condition
                if c.memory == "none" or c.start != "train" or not c.plays_in(played.key):
                    continue
                env = c.memory_env(played, self.config.env)  # where its memory is built
                path = self.memory_path(env, arm)
                if path in seen:
                    continue
                seen.add(path)
                rec = db.memory(
                    env=env.key, source=c.source, build=c.memory_kind, builder=arm.builder
                )
                if rec is not None and Path(path).exists():
                    continue
                # A memory file without a record is a build that was interrupted: a
                # prompt-memory build resumes where it stopped (each procedure costs
                # LLM calls), an executable one is redone (it is built all at once).
                if c.memory_kind == "skills":
                    _remove_sqlite(path)
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                if self._reuse_memory(db, env, arm, path):
                    continue
                self._set_memory_origin(db, path, None)  # built here
                trajs = [
                    t
                    for t in db.trajectories(phase="collect", env=env.key, arm=c.source)
                    if t.success
                ]
                if not trajs:
                    # A source that never won (a weak model) must not sink the whole study:
                    # its conditions are skipped and the report says why.
                    msg = (
                        f"no successful training trajectories from {c.source!r} on {env.key}; "
                        f"conditions using that memory are skipped (check train_episodes and "
                        "the source)"
                    )
                    db.add_error(f"build/{env.key}/{c.source}/{c.memory_kind}", msg)
                    self.console.print(f"[yellow]{msg}[/yellow]")
                    self._no_memory.add(path)
                    continue
                tasks.append(
                    BuildTask(
                        env=env,
                        source=c.source,
                        build=c.memory_kind,
                        builder=arm.builder,
                        embedder=self.config.embedder,
                        path=path,
                        trajectories=tuple(t.model_dump_json() for t in trajs),
                        distill=self.config.distill,
                    )
                )
        bars: dict[str, TaskID] = {}
        if tasks:
            bars["build"] = prog.add_task("build memories", total=len(tasks), note="")

        def ok(res: TaskResult) -> str:
            t: BuildTask = res.task  # type: ignore[assignment]
            db.add_memory(
                env=t.env.key,
                source=t.source,
                build=t.build,
                builder=t.builder,
                path=t.path,
                procedures=int(res.value),
                wall_s=res.wall_s,
                **res.extra,
            )
            return f"{t.env.key}/{t.build}: {res.value} procedures"

        failures = self._drain(db, tasks, ok, prog, bars)
        if failures:
            raise InvalidInput(
                f"{failures} memory build(s) failed (see the errors above); fix and re-run "
                "the same command to resume"
            )
        self._build_folds(db)

    def _build_folds(self, db: RunDB) -> None:
        """Per fold, a copy of the memory with the procedures built from that fold's
        episodes retired (kept as records, never retrieved or run). Derived from the one
        memory of all training episodes, so a fold costs no LLM call."""
        for env in self.config.env:
            if not env.folds:
                continue
            held: dict[int, set[int]] = defaultdict(set)
            for e, f in env.fold_of().items():
                held[f].add(e)
            for arm in self.arms:
                c = arm.condition
                base = self.memory_path(env, arm)
                if c.memory == "none" or base in self._no_memory or not c.plays_in(env.key):
                    continue
                trajs = db.trajectories(phase="collect", env=env.key, arm=c.source)
                for f in range(env.folds):
                    path = self.memory_path(env, arm, f)
                    label = f"{env.key}#fold{f}"
                    rec = db.memory(env=label, source=c.source, build=c.memory_kind,
                                    builder=arm.builder)  # fmt: skip
                    if rec is not None and Path(path).exists():
                        continue
                    out = [t for t in trajs if t.metadata.get("episode") in held[f]]
                    n = _hold_out(base, path, out)
                    db.add_memory(env=label, source=c.source, build=c.memory_kind,
                                  builder=arm.builder, path=path, procedures=n,
                                  wall_s=0.0)  # fmt: skip

    def _reuse_memory(self, db: RunDB, env: EnvConfig, arm: Arm, path: str) -> bool:
        if self._index is None:
            return False
        c = arm.condition
        found = self._index.memory(
            memory_identity(self.config, env, c.source, c.memory_kind, arm.builder)
        )
        if found is None:
            return False
        # The copy must have been built from this run's training episodes (the same
        # identities can differ in content when this run collected them itself).
        mine = {t.id for t in db.trajectories(phase="collect", env=env.key, arm=c.source)}
        if mine != found.collect_ids:
            return False
        _copy_sqlite(str(found.file), path)
        self._set_memory_origin(db, path, found.root)
        rec = found.record
        db.add_memory(
            env=env.key,
            source=c.source,
            build=c.memory_kind,
            builder=arm.builder,
            path=path,
            procedures=rec["procedures"],
            wall_s=rec["wall_s"],
            prompt_tokens=rec["prompt_tokens"],
            completion_tokens=rec["completion_tokens"],
        )
        db.clear_error(f"build/{env.key}/{c.source}/{c.memory_kind}/{arm.builder}")
        self._count_reused(db, found.run, "memories")
        return True

    # -- 3. evaluate ------------------------------------------------------------
    def _evaluate(self, db: RunDB, prog: Progress) -> None:
        cfg = self.config
        done = db.done_keys("eval")
        groups_by_env = {env.key: split_groups(env.eval_indices(), cfg.groups) for env in cfg.env}
        bars: dict[str, TaskID] = {}
        for arm in self.arms:
            total = sum(
                len(env.eval_indices()) for env in cfg.env if arm.condition.plays_in(env.key)
            )
            finished = [r for r in db.episodes(phase="eval", arm=arm.label)]
            wins = sum(r.success for r in finished)
            bars[f"eval/{arm.label}"] = prog.add_task(
                f"eval {arm.label}",
                total=total,
                completed=len(finished),
                note=f"won {wins}" if finished else "",
            )
        wins_by_arm: dict[str, int] = defaultdict(int)
        for r in db.episodes(phase="eval"):
            wins_by_arm[r.arm] += int(r.success)
        # (env, arm) not to run: not one of the arm's blocks, update chain broken, no memory
        blocked: set[tuple[str, str]] = {
            (env.key, arm.label)
            for env in cfg.env
            for arm in self.arms
            if not arm.condition.plays_in(env.key)
            or (
                arm.condition.memory != "none"
                and arm.condition.start == "train"
                and self.memory_path(env, arm) in self._no_memory
            )
        }

        finished = self._finished_by_identity(db, "eval")
        for g in range(cfg.groups):
            tasks: list[Task] = []
            shared = _Shared()
            for env in cfg.env:
                arms = [a for a in self.arms if (env.key, a.label) not in blocked]
                mems = {a.label: self._episode_memory(env, a, g) for a in arms}
                # Episode-major order: an interrupted run still holds paired results
                # (the same episodes under every condition) and the bars advance together.
                for e in groups_by_env[env.key][g]:
                    for arm in arms:
                        mem = mems[arm.label]
                        if env.folds:  # each episode reads its own fold's memory
                            mem = self._episode_memory(env, arm, g, e)
                        if (env.key, arm.label, env.eval_split, e) in done:
                            continue
                        ident = self._identity(env, "eval", arm.label, e, g)
                        copied = self._copy_eval(db, env, arm, e, g, finished.get(ident or ""))
                        if copied is None:
                            copied = self._reuse_episode(db, env, arm, e, g)
                        if copied is not None:
                            wins_by_arm[arm.label] += int(bool(copied.success))
                            note = f"won {wins_by_arm[arm.label]}"
                            prog.update(bars[f"eval/{arm.label}"], advance=1, note=note)
                            continue
                        if shared.joins(ident, (env, arm, e)):
                            continue
                        task = EpisodeTask(
                            env=env,
                            arm=arm.label,
                            condition=arm.condition,
                            model=arm.model,
                            episode=e,
                            group=g,
                            seed=env.episode_seed(cfg.seed, "eval", e),
                            memory_path=mem,
                            agent=env.agent_config(cfg.agent),
                            embedder=cfg.embedder,
                        )
                        shared.plays(ident, task.key, (env, arm, e))
                        tasks.append(task)

            def ok(res: TaskResult, shared: _Shared = shared) -> str:
                t: EpisodeTask = res.task  # type: ignore[assignment]
                traj = Trajectory.model_validate_json(res.value)
                for i, (env, arm, e) in enumerate(shared.blocks[res.key]):
                    traj.metadata["condition"] = arm.label
                    self._add_eval(db, env, arm.label, arm.model, e, t.group, traj, res.wall_s)
                    wins_by_arm[arm.label] += int(bool(traj.success))
                    if i:  # the first block's bar is advanced by _drain
                        note = f"won {wins_by_arm[arm.label]}"
                        prog.update(bars[f"eval/{arm.label}"], advance=1, note=note)
                return f"won {wins_by_arm[t.arm]}"

            self._drain(db, tasks, ok, prog, bars)
            if g < cfg.groups - 1:
                self._update(db, g, groups_by_env, blocked)

    def _add_eval(
        self,
        db: RunDB,
        env: EnvConfig,
        arm: str,
        model: str | None,
        episode: int,
        group: int,
        traj: Trajectory,
        wall_s: float,
    ) -> None:
        db.add_episode(
            phase="eval",
            env=env.key,
            arm=arm,
            model=model,
            split=env.eval_split,
            episode=episode,
            group=group,
            seed=env.episode_seed(self.config.seed, "eval", episode),
            trajectory=traj,
            wall_s=wall_s,
        )

    def _copy_eval(
        self, db: RunDB, env: EnvConfig, arm: Arm, e: int, g: int, row: EpisodeRow | None
    ) -> Trajectory | None:
        """Record another block's finished twin of this episode under this block too."""
        if row is None:
            return None
        traj = db.trajectory(row.id)
        traj.metadata["condition"] = arm.label
        self._add_eval(db, env, arm.label, arm.model, e, g, traj, row.wall_s)
        db.clear_error(f"eval/{env.key}/{arm.label}/{e}")
        return traj

    def _reuse_episode(
        self, db: RunDB, env: EnvConfig, arm: Arm, e: int, g: int
    ) -> Trajectory | None:
        """Copy this eval episode from another run if it was played there; the copy or None."""
        if self._index is None or not reusable_eval(arm, g):
            return None
        cfg = self.config
        root = None
        if arm_memory_identity(cfg, env, arm) is not None:
            root = self._memory_root(db, self.memory_path(env, arm))
        found = self._index.episode(eval_identity(cfg, env, arm, e, g), memory_root=root)
        if found is None:
            return None
        traj = found.trajectory
        traj.metadata["condition"] = arm.label
        traj.metadata["reused_from"] = found.run
        self._add_eval(db, env, arm.label, arm.model, e, g, traj, found.wall_s)
        db.clear_error(f"eval/{env.key}/{arm.label}/{e}")
        self._count_reused(db, found.run, "eval")
        return traj

    def _episode_memory(
        self, env: EnvConfig, arm: Arm, group: int, episode: int | None = None
    ) -> str | None:
        c = arm.condition
        if c.update == "none":
            if c.memory == "none":
                return None
            return self.memory_path(env, arm, env.fold_of().get(episode) if env.folds else None)
        path = self.arm_memory_path(env, arm, group)
        if group == 0 and not Path(path).exists():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if c.start == "train":
                _copy_sqlite(self.memory_path(env, arm), path)
            else:
                # Create the empty store here so parallel workers never race to migrate it.
                from memp.store import open_store

                open_store(path).close()
        return path

    def _update(
        self,
        db: RunDB,
        group: int,
        groups_by_env: dict[str, list[list[int]]],
        blocked: set[tuple[str, str]],
    ) -> None:
        tasks: list[Task] = []
        for env in self.config.env:
            want = set(groups_by_env[env.key][group])
            for arm in self.arms:
                c = arm.condition
                if c.update == "none" or (env.key, arm.label) in blocked:
                    continue
                if db.update_done(env=env.key, arm=arm.label, group=group):
                    continue
                rows = [
                    r
                    for r in db.episodes(phase="eval", env=env.key, arm=arm.label)
                    if r.group == group
                ]
                if {r.episode for r in rows} != want:
                    # Some episode of this group failed to run: updating from a partial
                    # group would change what the curve measures. Re-run to retry.
                    blocked.add((env.key, arm.label))
                    self.console.print(
                        f"[yellow]skipping later groups of {arm.label} on {env.key}: group "
                        f"{group} is incomplete; re-run to retry[/yellow]"
                    )
                    continue
                src = self.arm_memory_path(env, arm, group)
                dst = self.arm_memory_path(env, arm, group + 1)
                _remove_sqlite(dst)
                _copy_sqlite(src, dst)
                tasks.append(
                    UpdateTask(
                        env=env,
                        arm=arm.label,
                        group=group,
                        strategy=c.update,
                        # New procedures are built the way the arm's memory was built;
                        # executable memory learns from each episode (skills.learn).
                        options=(
                            {"executable": True, **c.update_options}
                            if c.mode == "executable"
                            else {
                                "build_strategy": c.memory
                                if c.memory in BUILD_STRATEGIES
                                else "trajectory",
                                **c.update_options,
                            }
                        ),
                        llm=arm.builder_llm,
                        embedder=self.config.embedder,
                        path=dst,
                        outcomes=tuple(db.trajectory(r.id).model_dump_json() for r in rows),
                    )
                )
        if not tasks:
            return
        for res in self.executor().run(tasks):
            t: UpdateTask = res.task  # type: ignore[assignment]
            if res.ok:
                db.add_update(
                    env=t.env.key,
                    arm=t.arm,
                    group=t.group,
                    report={"report": res.value, **res.extra},
                    wall_s=res.wall_s,
                )
                db.clear_error(res.key)
            else:
                db.add_error(res.key, res.error or "")
                blocked.add((t.env.key, t.arm))
                first = (res.error or "").splitlines()[0]
                self.console.print(f"[red]update failed[/red] {res.key}: {first}")


def _bar_key(task: Task) -> str:
    if isinstance(task, CollectTask):
        return f"collect/{task.env.key}/{task.source}"
    if isinstance(task, BuildTask):
        return "build"
    if isinstance(task, EpisodeTask):
        return f"eval/{task.arm}"
    return "update"


def _copy_sqlite(src: str, dst: str) -> None:
    # The backup API copies a consistent snapshot, including pages still in the WAL.
    if not Path(src).exists():
        raise InvalidInput(
            f"memory {src} is missing; delete the run's memories table or use --fresh"
        )
    s = sqlite3.connect(src)
    d = sqlite3.connect(dst)
    try:
        s.backup(d)
    finally:
        d.close()
        s.close()


def _hold_out(base: str, path: str, held_out: list[Trajectory]) -> int:
    """Copy memory ``base`` to ``path`` and retire every procedure built from one of the
    ``held_out`` trajectories (its source id or its task); returns the active procedures left."""
    from memp.store import open_store
    from memp.types import ProcedureStatus

    _remove_sqlite(path)
    _copy_sqlite(base, path)
    ids = {t.id for t in held_out}
    tasks = {t.task for t in held_out}
    store = open_store(path)
    try:
        for p in store.list(status=ProcedureStatus.ACTIVE):
            if p.source_trajectory_id in ids or p.task in tasks:
                store.set_status(p.id, ProcedureStatus.RETIRED, namespace=p.namespace)
        return store.count(status=ProcedureStatus.ACTIVE)
    finally:
        store.close()


def _remove_sqlite(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(path + suffix).unlink(missing_ok=True)


def run_experiment(
    config: ExperimentConfig,
    out: str | Path,
    *,
    executor: str | None = None,
    workers: int | None = None,
    address: str | None = None,
    fresh: bool = False,
    progress: bool = True,
    console: Console | None = None,
    reuse: list[str | Path] | None = None,
) -> dict[str, Any]:
    """Run (or resume) an experiment into ``out``; returns the report's numbers.

    ``reuse``: run directories whose identical finished units are copied, not replayed.
    """
    out = Path(out)
    if reuse:
        check_sources(reuse, current=out)  # before --fresh deletes anything
    if fresh and out.exists():
        if not (out / "run.db").exists():
            raise InvalidInput(f"--fresh refuses to delete {out}: it is not a memp run directory")
        shutil.rmtree(out)
    return Runner(
        config,
        out,
        executor=executor,
        workers=workers,
        address=address,
        progress=progress,
        console=console,
        reuse=reuse,
    ).run()
