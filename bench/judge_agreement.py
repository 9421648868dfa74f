"""How often the LLM judge (memp.judge) agrees with the true reward, on recorded episodes.

    python bench/judge_agreement.py [--run reports/alfworld/run.db] [--per-class 20] [--llm local] [--per-arm]
        [--example]

Takes up to N won and N lost evaluation episodes of the run (official ALFWorld games by
default: executable wins and losses, ReAct losses), has the judge read each one with its
outcome hidden, and prints the confusion table, the agreement and Cohen's kappa side by
side per arm and overall.
"""

from __future__ import annotations

import argparse
import random
import sqlite3

from rich.console import Console
from rich.progress import track
from rich.table import Table

from memp.judge import judge
from memp.llm import make_llm
from memp.types import Trajectory


def kappa(tp: int, fp: int, fn: int, tn: int) -> float:
    n = tp + fp + fn + tn
    if not n:
        return 0.0
    po = (tp + tn) / n
    pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    return (po - pe) / (1 - pe) if pe < 1 else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="reports/alfworld/run.db")
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--llm", default="local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-arm", action="store_true", help="N per (arm, outcome) cell")
    ap.add_argument(
        "--example",
        action="store_true",
        help="show the judge a won training episode of the same task type first",
    )
    args = ap.parse_args()
    db = sqlite3.connect(f"file:{args.run}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT arm, success, trajectory FROM episodes WHERE phase = 'eval'"
    ).fetchall()
    rng = random.Random(args.seed)
    picked: list[tuple[str, bool, Trajectory]] = []
    # N per outcome, or with --per-arm N per (arm, outcome): the losses of a run are
    # mostly one arm's (ReAct loops, easy to call), the near misses another's
    cells = (
        sorted({(r[0], bool(r[1])) for r in rows})
        if args.per_arm
        else [(None, True), (None, False)]
    )
    for arm_of, won in cells:
        pool = [r for r in rows if bool(r[1]) == won and arm_of in (None, r[0])]
        for arm, success, blob in rng.sample(pool, min(args.per_class, len(pool))):
            picked.append((arm, bool(success), Trajectory.model_validate_json(blob)))
    # won training episodes by task type: the worked example of a finished task
    examples: dict[str, Trajectory] = {}
    if args.example:
        for (blob,) in db.execute(
            "SELECT trajectory FROM episodes WHERE phase = 'collect' AND success = 1 ORDER BY id"
        ):
            t = Trajectory.model_validate_json(blob)
            examples.setdefault(str(t.metadata.get("task_type")), t)
    llm = make_llm(args.llm, cache=False)
    counts: dict[str, list[int]] = {}
    tokens = 0
    for arm, truth, traj in track(picked, description="judging"):
        hidden = traj.model_copy(update={"success": None, "reward": 0.0})
        v = judge(llm, hidden, example=examples.get(str(traj.metadata.get("task_type"))))
        tokens += v.prompt_tokens + v.completion_tokens
        for key in (arm, "all"):
            c = counts.setdefault(key, [0, 0, 0, 0])  # tp fp fn tn
            c[(0 if v.success else 2) if truth else (1 if v.success else 3)] += 1
    how = "with a won example of the task type" if args.example else "rule only"
    table = Table(title=f"{llm.name} as judge ({how}), {len(picked)} episodes of {args.run}")
    for col in (
        "arm",
        "won: judged won",
        "lost: judged won",
        "won: judged lost",
        "lost: judged lost",
        "agreement",
        "kappa",
    ):
        table.add_column(col, justify="right")
    for key, (tp, fp, fn, tn) in sorted(counts.items(), key=lambda kv: kv[0] == "all"):
        n = tp + fp + fn + tn
        table.add_row(
            key,
            str(tp),
            str(fp),
            str(fn),
            str(tn),
            f"{(tp + tn) / n:.0%}",
            f"{kappa(tp, fp, fn, tn):.2f}",
        )
    Console(width=140).print(table)
    print(f"tokens per judgement: {tokens / max(1, len(picked)):.0f}")


if __name__ == "__main__":
    main()
