"""ReAct step latency on real ALFWorld games: the admissible list at the end of the prompt
(re-evaluated every step) against the incremental layout (each step appends its action and
a turn with what it led to and the actions it made available, so the prefix cache holds).

The LLM seconds are the model calls alone (what the prompt layout changes); the episode
seconds add loading the game and stepping the engine.

    python bench/react_prompt.py [--data ../shared/alfworld] [--games 3] [--steps 15] [--llm local]

Both layouts play the same official valid_seen games (the first N in interleaved order, one
per task type) with the same loaded model, back to back in this process: read the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

from rich.console import Console
from rich.progress import track
from rich.table import Table

from memp.agent import ReActAgent
from memp.envs.alfworld import AlfworldEnv
from memp.llm import make_llm
from memp.llm.ledger import UsageLedger


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/alfworld")
    ap.add_argument("--games", type=int, default=3)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--llm", default="local")
    args = ap.parse_args()
    llm = make_llm(args.llm, cache=False)
    env = AlfworldEnv("valid_seen", data_dir=args.data, order="interleaved", max_steps=args.steps)
    layouts = ("all", "new")
    metrics: dict[str, dict[str, list[float]]] = {}
    for layout in layouts:
        agent = ReActAgent(llm, max_steps=args.steps, list_admissible=layout)
        m = metrics[layout] = {"call": [], "later": [], "wall": [], "prompt": [], "evaluated": []}
        for g in track(range(args.games), description=f"layout {layout!r}"):
            t0 = time.perf_counter()
            with UsageLedger() as ledger:
                traj = agent.run(env, g)
            # tokens the model really evaluated (the rest came from the KV cache)
            m["evaluated"] += [float(r.prompt_tokens_evaluated or 0) for r in ledger][1:]
            n = max(1, len(traj.steps))
            m["wall"].append((time.perf_counter() - t0) / n)
            m["call"] += [s.latency_s or 0.0 for s in traj.steps]
            # the first call evaluates the system part and the worked example
            m["later"] += [s.latency_s or 0.0 for s in traj.steps[1:]]
            m["prompt"] += [float(s.prompt_tokens or 0) for s in traj.steps]
    env.close()
    table = Table(
        title=f"{llm.name}: ReAct on {args.games} official ALFWorld games, <= {args.steps} steps"
    )
    table.add_column("metric")
    for layout in layouts:
        table.add_column(f"list_admissible={layout!r}", justify="right")
    table.add_column("all / new", justify="right")
    for name, key, fmt in (
        ("LLM seconds per step", "call", "{:.2f}"),
        ("LLM seconds per step after the first", "later", "{:.2f}"),
        ("episode seconds per step (game load included)", "wall", "{:.2f}"),
        ("prompt tokens per step", "prompt", "{:.0f}"),
        ("prompt tokens evaluated per step after the first", "evaluated", "{:.0f}"),
    ):
        vals = [statistics.mean(metrics[la][key]) for la in layouts]
        table.add_row(name, *[fmt.format(v) for v in vals], f"{vals[0] / vals[1]:.2f}x")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
