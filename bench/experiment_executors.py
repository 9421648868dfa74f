"""Executor throughput side by side: the same experiment on inline / local pool / Ray.

The scripted LLM and hashing embedder isolate the runner's own overhead (process start,
task shipping, result recording); with the local model, per-episode LLM time dominates
and the useful number of workers is cores / threads-per-model.

    python bench/experiment_executors.py [--episodes 40] [--ray]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from memp.experiment.config import parse_config
from memp.experiment.runner import run_experiment


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--ray", action="store_true", help="also time the Ray executor")
    ap.add_argument("--model", default="scripted", help="LLM spec (default: the scripted test LLM)")
    args = ap.parse_args()
    cfg = parse_config({
        "name": "bench-executors", "models": [args.model], "embedder": "hash",
        "agent": {"max_steps": 20},
        "env": {"name": "twx", "train_split": "train", "eval_split": "test", "train_episodes": 4,
                "eval_episodes": args.episodes, "options": {"game": "twc"}},
        "conditions": [{"name": "no-memory"}],
    })
    setups = [("inline", 1), ("local", 1), ("local", 2)] + ([("ray", 2)] if args.ray else [])
    base = None
    print(f"{'executor':<10} {'workers':>7} {'episodes':>8} {'seconds':>8} {'ep/s':>7} {'vs inline':>9}")
    for name, workers in setups:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            s = run_experiment(cfg, d, executor=name, workers=workers, progress=False)
            dt = time.perf_counter() - t0
        n = sum(c["n"] for c in s["conditions"])
        rate = n / dt
        base = base or rate
        print(f"{name:<10} {workers:>7} {n:>8} {dt:>8.1f} {rate:>7.2f} {rate / base:>8.2f}x")


if __name__ == "__main__":
    main()
