"""Local LLM throughput and per-agent-step latency, with and without prefix-cache reuse.

    python bench/llm.py [--llm local|local:fast|<path>.gguf] [--steps 8] [--repeats 2]

Prints prompt and generation tokens/s, then plays the same simulated agent episode
(a fixed ~400-token system prompt, a growing history, a grammar-constrained choice
among the admissible actions each step) twice: reusing the KV cache of the shared
prompt prefix, and re-evaluating every prompt from scratch. Both runs happen in this
process, back to back, on the same loaded model, so the ratio is what to read.
"""

from __future__ import annotations

import argparse
import statistics
import time

from rich.console import Console
from rich.progress import track
from rich.table import Table

from memp.llm import make_llm
from memp.llm.local import LocalLLM

SYSTEM = (
    "You are an agent in a simulated household. Each turn you receive the task, the last "
    "observation and the admissible actions, and you reply with exactly one admissible "
    "action and nothing else.\n"
    "Guidelines from procedural memory:\n"
    "1. Find the target object: check countertops, cabinets, drawers and shelves in order.\n"
    "2. Take the object from where it is.\n"
    "3. If the task says clean, go to the sinkbasin and clean the object with it.\n"
    "4. If the task says hot, go to the microwave and heat the object with it.\n"
    "5. If the task says cool, go to the fridge and cool the object with it.\n"
    "6. Go to the target receptacle, open it if it is closed, and put the object in it.\n"
    "Rules: never repeat an action that did nothing; do not examine objects needlessly; "
    "prefer actions that move toward the next guideline step; when an object is carried, "
    "do not take another one; keep track of which receptacles were already searched.\n"
) * 2

ROOM = ["countertop 1", "countertop 2", "cabinet 1", "cabinet 2", "cabinet 3", "drawer 1",
        "fridge 1", "microwave 1", "sinkbasin 1", "shelf 1", "stoveburner 1", "toaster 1"]


def admissible(step: int) -> list[str]:
    acts = [f"go to {r}" for r in ROOM] + ["look", "inventory"]
    acts += [f"open cabinet {1 + step % 3}", f"examine countertop {1 + step % 2}"]
    if step % 2:
        acts.append(f"take mug {step} from countertop {1 + step % 2}")
    return acts


def episode(llm: LocalLLM, steps: int) -> tuple[list[float], list[int], list[int], list[str]]:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Task: put a clean mug in the coffeemachine.\n"
         "Observation: You are in the middle of a room.\nNext action?"},
    ]
    latencies, prompt, evaluated, actions = [], [], [], []
    for step in range(steps):
        out = llm.complete(messages, max_tokens=16, choices=admissible(step))
        latencies.append(out.latency_s)
        prompt.append(out.prompt_tokens)
        evaluated.append(llm.last_prompt_tokens_evaluated or out.prompt_tokens)
        actions.append(out.text)
        messages.append({"role": "assistant", "content": out.text})
        messages.append({"role": "user", "content": f"Observation: You did '{out.text}'. "
                         f"Nothing special happens. Admissible: {', '.join(admissible(step + 1))}.\n"
                         "Next action?"})
    return latencies, prompt, evaluated, actions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm", default="local")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2, help="episodes per setting")
    args = ap.parse_args()
    console = Console(width=150)  # the table is wide; also when printed to a file
    t0 = time.perf_counter()
    llm = make_llm(args.llm, cache=False)
    if not isinstance(llm, LocalLLM):
        raise SystemExit("bench/llm.py measures the in-process llama.cpp backend: use a local spec")
    console.print(f"loaded {llm.name} in {time.perf_counter() - t0:.1f}s, n_threads={llm.n_threads}")

    # Prompt throughput: a fresh ~800-token prompt, one token generated.
    long_user = "Summarise: " + SYSTEM
    rates = []
    for _ in track(range(3), description="prompt throughput"):
        llm.reset()
        out = llm.complete([{"role": "user", "content": long_user}], max_tokens=1)
        rates.append(out.prompt_tokens / out.latency_s)
    prompt_tps = statistics.median(rates)
    # Generation throughput: the prompt is cached, so the time is decoding.
    gen = []
    count = [{"role": "user", "content": "Count from 1 to 200, separated by spaces."}]
    llm.complete(count, max_tokens=1)
    for _ in track(range(3), description="generation throughput"):
        out = llm.complete(count, max_tokens=64)
        gen.append(out.completion_tokens / out.latency_s)
    gen_tps = statistics.median(gen)

    settings = [
        ("reuse ON, trie", True, "trie"),
        ("reuse OFF, trie", False, "trie"),
        ("reuse ON, grammar", True, "grammar"),
        ("reuse OFF, grammar", False, "grammar"),
    ]
    results = {}
    for label, reuse, method in settings:
        llm.reuse_prefix, llm.choice_method = reuse, method
        lat, prm, ev, acts = [], [], [], []
        for _ in track(range(args.repeats), description=f"episodes, {label}"):
            llm.reset()
            a, b, c, d = episode(llm, args.steps)
            lat += a
            prm += b
            ev += c
            acts.append(d)
        results[label] = (lat, prm, ev, acts)
    llm.reuse_prefix, llm.choice_method = True, "trie"

    table = Table(title=f"{llm.name}: {args.steps}-step episodes x {args.repeats}, actions constrained to the admissible list")
    table.add_column("metric")
    for label, *_ in settings:
        table.add_column(label, justify="right")
    table.add_column("reuse OFF / ON (trie)", justify="right")
    table.add_column("reuse OFF / ON (grammar)", justify="right")

    def row(label: str, idx: int, agg, fmt: str = "{:.3f}") -> None:
        vals = [agg(results[name][idx]) for name, *_ in settings]
        ratios = [f"{vals[1] / vals[0]:.2f}x" if vals[0] else "-", f"{vals[3] / vals[2]:.2f}x" if vals[2] else "-"]
        table.add_row(label, *[fmt.format(v) for v in vals], *ratios)

    row("mean step latency (s)", 0, statistics.mean)
    row("median step latency (s)", 0, statistics.median)
    row("episode latency (s)", 0, lambda xs: sum(xs) / args.repeats)
    row("prompt tokens / step", 1, statistics.mean, "{:.0f}")
    row("prompt tokens evaluated / step", 2, statistics.mean, "{:.0f}")
    console.print(f"prompt eval: {prompt_tps:.0f} tok/s   generation: {gen_tps:.1f} tok/s")
    console.print(table)
    base = results[settings[0][0]][3]
    for label, *_ in settings[1:]:
        console.print(f"same actions as '{settings[0][0]}' with '{label}': {results[label][3] == base}")

if __name__ == "__main__":
    main()
