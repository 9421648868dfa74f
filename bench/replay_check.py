"""Replay the recorded no-LLM skill episodes of finished runs and compare them step by step.

An executable arm with ``use_llm = false`` is deterministic: the same memory file,
environment options, episode index and seed must give the same actions. For every
such arm of each run directory, every recorded evaluation episode is played again
with the current code through the runner's own worker (``EpisodeTask`` executed by a
``WorkerContext``) and compared with the stored trajectory (actions, success, steps).
Run and memory databases are copied to a scratch directory first, so nothing
committed is touched. Exits 1 on any difference.

    python bench/replay_check.py [--runs reports/executable_alfworld ...] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from memp.errors import MempError
from memp.experiment.config import parse_config
from memp.experiment.rundb import RunDB
from memp.experiment.runner import Runner
from memp.experiment.worker import EpisodeTask, WorkerContext, execute
from memp.types import Trajectory

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNS = [
    "reports/executable_alfworld",
    "reports/executable_text",
    "reports/build_policy",
    "reports/alfworld",
]


@dataclass
class Diff:
    arm: str
    env: str
    episode: int
    step: int  # first differing step (0-based), or -1 when only the outcome differs
    detail: str


def _first_difference(old: Trajectory, new: Trajectory) -> tuple[int, str] | None:
    if old.task != new.task:
        # not the same game: the environment's games are not the ones the run played
        return -1, f"another game: recorded task {old.task!r}, now {new.task!r}"
    a, b = old.actions, new.actions
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i, f"recorded {x!r}, now {y!r}"
    if len(a) != len(b):
        i = min(len(a), len(b))
        return i, f"recorded {len(a)} steps, now {len(b)}"
    if bool(old.success) != bool(new.success):
        return -1, f"recorded success={old.success}, now {new.success}"
    return None


def _copy_sqlite(src: Path, dst: Path) -> None:
    # A WAL database may keep recent pages beside the main file.
    dst.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


def check_run(
    run_dir: Path,
    scratch: Path,
    ctx: WorkerContext,
    limit: int | None,
    only: set[str] | None = None,
    save: list[dict] | None = None,
) -> dict:
    """Replay one run; returns its table data. ``save`` collects every replayed episode."""
    local = scratch / run_dir.name
    _copy_sqlite(run_dir / "run.db", local / "run.db")
    with RunDB(local / "run.db") as db:
        cfg = parse_config(json.loads(json.dumps(db.get_meta("config"))), origin=str(run_dir))
        runner = Runner(cfg, run_dir, progress=False)
        arms = [
            a
            for a in runner.arms
            if a.condition.mode == "executable"
            and not a.condition.use_llm
            and (only is None or a.label in only)
        ]
        per_arm: dict[str, list[int]] = {}  # arm -> [identical, total]
        same = total = 0
        diffs: list[Diff] = []
        missing: list[str] = []
        t0 = time.perf_counter()
        for arm in arms:
            for env in cfg.env:
                rows = [r for r in db.episodes(phase="eval", arm=arm.label) if r.env == env.key]
                rows.sort(key=lambda r: r.episode)
                if not rows:
                    continue
                try:
                    ctx.env(env, env.eval_split)
                except MempError as e:
                    # e.g. generated games not there: say how to get them, once
                    missing.append(f"{env.key}: {e}")
                    total += len(rows[:limit])
                    continue
                committed = Path(runner.memory_path(env, arm))
                memory = local / "memory" / committed.name
                if not memory.exists():
                    _copy_sqlite(committed, memory)
                for row in rows[:limit]:
                    task = EpisodeTask(
                        env=env,
                        arm=arm.label,
                        condition=arm.condition,
                        model=arm.model,
                        episode=row.episode,
                        group=row.group,
                        seed=row.seed,
                        memory_path=str(memory),
                        agent=env.agent_config(cfg.agent),
                        embedder=cfg.embedder,
                    )
                    res = execute(task, ctx)
                    total += 1
                    counts = per_arm.setdefault(arm.label, [0, 0])
                    counts[1] += 1
                    if not res.ok:
                        diffs.append(
                            Diff(arm.label, env.key, row.episode, -1, f"error: {res.error}")
                        )
                        continue
                    new = Trajectory.model_validate_json(res.value)
                    if save is not None:
                        save.append(
                            {
                                "run": str(run_dir),
                                "arm": arm.label,
                                "env": env.key,
                                "episode": row.episode,
                                "actions": new.actions,
                                "success": new.success,
                            }
                        )
                    d = _first_difference(db.trajectory(row.id), new)
                    if d is None:
                        same += 1
                        counts[0] += 1
                    else:
                        diffs.append(Diff(arm.label, env.key, row.episode, d[0], d[1]))
        return {
            "run": str(run_dir),
            "arms": [a.label for a in arms],
            "per_arm": per_arm,
            "identical": same,
            "total": total,
            "diffs": diffs,
            "missing": missing,
            "wall_s": time.perf_counter() - t0,
        }


def _print(r: dict) -> None:
    print(f"\n{r['run']}  ({r['wall_s']:.0f} s)")
    print(f"  {'arm':<32} {'identical':>9} {'different':>9}")
    for arm, (ok, n) in r["per_arm"].items():
        print(f"  {arm:<32} {ok:>9} {n - ok:>9}")
    print(f"  {'all':<32} {r['identical']:>9} {r['total'] - r['identical']:>9}")
    if r["diffs"]:
        d = r["diffs"][0]
        where = f"step {d.step}" if d.step >= 0 else "outcome"
        print(f"  first difference: {d.arm} / {d.env} episode {d.episode}, {where}: {d.detail}")
    for m in r["missing"]:
        print(f"  not replayed, {m}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, help="run directories")
    ap.add_argument("--limit", type=int, default=None, help="episodes per arm and environment")
    ap.add_argument("--arms", nargs="+", default=None, help="only these arms (default: all)")
    ap.add_argument("--save", default=None, help="write the replayed episodes here (JSON lines)")
    args = ap.parse_args(argv)
    saved: list[dict] | None = [] if args.save else None
    # Stored env options hold paths relative to the repository (data_dir = "../shared/...").
    os.chdir(ROOT)
    failed = False
    ctx = WorkerContext()
    try:
        with tempfile.TemporaryDirectory(prefix="memp-replay-") as tmp:
            for run in args.runs:
                only = set(args.arms) if args.arms else None
                r = check_run(Path(run), Path(tmp), ctx, args.limit, only, saved)
                failed |= bool(r["diffs"] or r["missing"])
                _print(r)
                sys.stdout.flush()
    finally:
        ctx.close()
    if args.save:
        Path(args.save).write_text("".join(json.dumps(e) + "\n" for e in saved or []))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
