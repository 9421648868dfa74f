"""Environment step speed, side by side: expert replays through each adapter.

    python bench/bench_envs.py [--episodes 3]

Prints ms per step and per episode reset for ScienceWorld, TextWorld (tw-cooking,
games generated into a temp cache), TextWorldExpress (twc, cookingworld) and the
TravelPlanner fixture, plus each one's ratio to the fastest.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from memp.envs import make_env
from memp.policies import ExpertPolicy

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "envs" / "fixtures" / "travelplanner"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=3)
    args = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="memp-bench-tw-")
    setups = {
        "scienceworld": lambda: make_env("scienceworld", "dev"),
        "textworld": lambda: make_env("textworld", "train", n=args.episodes, level="easy", cache_dir=cache),
        "twx/twc": lambda: make_env("twx", "dev", game="twc"),
        "twx/cookingworld": lambda: make_env("twx", "dev", game="cookingworld"),
        "travelplanner": lambda: make_env(
            "travelplanner", "train", db_dir=FIXTURE / "database", queries=FIXTURE / "queries"
        ),
    }
    rows = []
    for name, make in setups.items():
        env = make()
        n = min(args.episodes, len(env))
        for ep in range(n):  # warm-up: game generation, JVM JIT, gold-path generation
            env.reset(episode=ep)
            env.expert_actions()
        steps, wins, t0 = 0, 0, time.perf_counter()
        step_time = 0.0
        for ep in range(n):
            traj = ExpertPolicy().run(env, ep)
            steps += len(traj.steps)
            wins += int(bool(traj.success))
            step_time += sum(s.latency_s for s in traj.steps)
        total = time.perf_counter() - t0
        env.close()
        rows.append((name, n, wins, steps, 1000 * step_time / max(steps, 1), 1000 * (total - step_time) / n))
    fastest = min(r[4] for r in rows)
    print(f"{'environment':<18}{'episodes':>9}{'won':>5}{'steps':>7}{'ms/step':>10}{'x fastest':>11}{'ms/reset+gold':>15}")
    for name, n, wins, steps, ms, reset_ms in rows:
        print(f"{name:<18}{n:>9}{wins:>5}{steps:>7}{ms:>10.2f}{ms / fastest:>11.1f}{reset_ms:>15.1f}")


if __name__ == "__main__":
    main()
