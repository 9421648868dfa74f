"""``memp demo``: does procedural memory help the local model? One command, fresh machine.

Generates ALFWorld-like training and held-out games (unseen floor plans), builds memory
from the expert's trajectories on the training games, and evaluates the local model
with no memory against memory run as executable procedures (plus the same procedures
with no LLM at all, the ablation that shows what the skill alone carries).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from memp.experiment.config import ExperimentConfig, parse_config
from memp.experiment.runner import run_experiment

TRAIN_SPLIT = "train"
EVAL_SPLIT = "valid_unseen"


def demo_config(
    data_dir: str | Path,
    *,
    games: int = 12,
    train: int = 24,
    model: str = "local",
    embedder: str = "local",
    build: str = "trajectory",
    max_steps: int = 30,
) -> ExperimentConfig:
    return parse_config(
        {
            "name": "demo",
            "description": (
                f"ALFWorld-like games generated locally: memory built from the expert's "
                f"trajectories on {train} training games, evaluated on {games} held-out games "
                f"in unseen floor plans with {model!r}, at most {max_steps} steps each."
            ),
            "seed": 0,
            "models": [model],
            "embedder": embedder,
            "agent": {"max_steps": max_steps},
            "env": [
                {
                    "name": "alfworld",
                    "label": "alfworld-like",
                    "train_split": TRAIN_SPLIT,
                    "eval_split": EVAL_SPLIT,
                    "train_episodes": train,
                    "eval_episodes": games,
                    "options": {"data_dir": str(data_dir)},
                }
            ],
            # Memory should pay: at least 30 points of success, 25% fewer steps.
            "target": {"success_points": 30, "steps_cut": 25},
            "conditions": [
                {"name": "no-memory", "memory": "none"},
                {
                    "name": "procedures",
                    "memory": build,
                    "mode": "executable",
                    "retrieve": "query",
                    "k": 3,
                },
                {
                    "name": "procedures-no-llm",
                    "memory": build,
                    "mode": "executable",
                    "retrieve": "query",
                    "k": 3,
                    "use_llm": False,
                },
            ],
        },
        origin="memp demo",
    )


def generate_games(data_dir: Path, *, games: int, train: int, seed: int = 0) -> None:
    """Generate (or reuse) the demo's games; generation is resumable too."""
    from memp.envs.alfworld_gen import generate

    generate(TRAIN_SPLIT, train, seed=seed, out=data_dir / TRAIN_SPLIT)
    generate(EVAL_SPLIT, games, seed=seed, out=data_dir / EVAL_SPLIT)


def run_demo(
    *,
    out: str | Path = "runs/demo",
    games: int = 12,
    train: int = 24,
    model: str = "local",
    executor: str = "local",
    workers: int | None = None,
    fresh: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or Console(stderr=True)
    out = Path(out)
    data_dir = out.parent / f"{out.name}-games"
    console.print(f"[bold]1/2[/bold] ALFWorld-like games -> {data_dir}")
    generate_games(data_dir, games=games, train=train)
    cfg = demo_config(data_dir, games=games, train=train, model=model)
    console.print(f"[bold]2/2[/bold] experiment -> {out}")
    return run_experiment(
        cfg, out, executor=executor, workers=workers, fresh=fresh, console=console
    )
