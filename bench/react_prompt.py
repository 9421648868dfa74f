"""ReAct step latency on real ALFWorld games: the admissible list at the end of the prompt
(re-evaluated every step) against the incremental layout (each step appends its action and
a turn with what it led to and the actions it made available, so the prefix cache holds),
and the incremental layout with snapshots of the system part's KV cache (an episode of a
task type seen before loads its worked example instead of evaluating it).

The LLM seconds are the model calls alone (what the prompt layout changes); the episode
seconds add loading the game and stepping the engine.

    python bench/react_prompt.py [--data ../shared/alfworld] [--games 3] [--steps 15] [--llm local]

All settings play the same official valid_seen games with the same loaded model, back to
back in this process: read the ratios. The games are the first N in interleaved order (one
per task type) and then the N after the first six (the same task types again, as a run of
the 48-game subset meets them).
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
from memp.llm.local import LocalLLM


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/alfworld")
    ap.add_argument("--games", type=int, default=3)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--llm", default="local")
    args = ap.parse_args()
    llm = make_llm(args.llm, cache=False)
    env = AlfworldEnv("valid_seen", data_dir=args.data, order="interleaved", max_steps=args.steps)
    if not isinstance(llm, LocalLLM):
        raise SystemExit("bench/react_prompt.py measures the in-process llama.cpp backend")
    layouts = {"all": ("all", 0), "new": ("new", 0), "new + snapshots": ("new", 8)}
    games = [*range(args.games), *range(6, 6 + args.games)]
    metrics: dict[str, dict[str, list[float]]] = {}
    for layout, (listing, states) in layouts.items():
        llm.prefix_states = states
        llm.reset()
        agent = ReActAgent(llm, max_steps=args.steps, list_admissible=listing)
        m = metrics[layout] = {
            "call": [], "first": [], "later": [], "wall": [], "prompt": [], "evaluated": []
        }  # fmt: skip
        for g in track(games, description=layout):
            t0 = time.perf_counter()
            with UsageLedger() as ledger:
                traj = agent.run(env, g)
            # tokens the model really evaluated (the rest came from the KV cache)
            m["evaluated"] += [float(r.prompt_tokens_evaluated or 0) for r in ledger][1:]
            n = max(1, len(traj.steps))
            m["wall"].append((time.perf_counter() - t0) / n)
            m["call"] += [s.latency_s or 0.0 for s in traj.steps]
            m["first"] += [s.latency_s or 0.0 for s in traj.steps[:1]]
            # the first call evaluates the system part and the worked example
            m["later"] += [s.latency_s or 0.0 for s in traj.steps[1:]]
            m["prompt"] += [float(s.prompt_tokens or 0) for s in traj.steps]
    env.close()
    table = Table(
        title=f"{llm.name}: ReAct on {len(games)} official ALFWorld games, <= {args.steps} steps"
    )
    table.add_column("metric")
    for layout in layouts:
        table.add_column(layout, justify="right")
    table.add_column("all / new", justify="right")
    table.add_column("new / new + snapshots", justify="right")
    for name, key, fmt in (
        ("LLM seconds per step", "call", "{:.2f}"),
        ("LLM seconds of an episode's first step", "first", "{:.2f}"),
        ("LLM seconds per step after the first", "later", "{:.2f}"),
        ("episode seconds per step (game load included)", "wall", "{:.2f}"),
        ("prompt tokens per step", "prompt", "{:.0f}"),
        ("prompt tokens evaluated per step after the first", "evaluated", "{:.0f}"),
    ):
        vals = [statistics.mean(metrics[la][key]) for la in layouts]
        ratios = (f"{vals[0] / vals[1]:.2f}x", f"{vals[1] / vals[2]:.2f}x")
        table.add_row(name, *[fmt.format(v) for v in vals], *ratios)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
