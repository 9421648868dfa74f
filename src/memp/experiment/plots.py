"""matplotlib figures of a run, returned as PNG bytes (the HTML report embeds them)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on servers and in CI
import matplotlib.pyplot as plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _ci_bars(rows: Sequence[Mapping[str, Any]]) -> list[list[float]]:
    """Error bars (percent) from each row's interval; bounds a hair inside the rate (as
    numbers from a report file may be) draw as zero, never as a negative bar."""
    lo = [max(0.0, 100 * (r["success_rate"] - r["ci_low"])) for r in rows]
    hi = [max(0.0, 100 * (r["ci_high"] - r["success_rate"])) for r in rows]
    return [lo, hi]


def condition_bars(title: str, rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Success rate (with 95% Wilson CI) and mean steps per condition.

    Steps are the report's one definition (``mean_steps``: a failed episode counts as the
    whole step budget), so the bars match the tables, step cuts and target verdict.
    """
    labels = [r["arm"] for r in rows]
    rate = [100 * r["success_rate"] for r in rows]
    steps = [r["mean_steps"] for r in rows]
    budget = next((r["step_budget"] for r in rows if r.get("step_budget")), None)
    width = max(6.0, 1.1 * len(labels) + 2)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(2 * width, 4))
    x = range(len(labels))
    a1.bar(x, rate, yerr=_ci_bars(rows), capsize=4, color="#4C72B0")
    a1.set_ylim(0, 105)
    a1.set_ylabel("success rate (%)")
    a1.set_title(f"{title}: success (wins/episodes, 95% CI)")
    bars = a2.bar(x, steps, color="#DD8452")
    a2.bar_label(bars, fmt="%.1f", fontsize=8)
    if budget:
        a2.axhline(budget, color="#888", linestyle="--", linewidth=1)
        a2.set_ylim(0, 1.1 * max([budget, *steps]))
    a2.set_ylabel("mean steps (failure = step budget)")
    a2.set_title(f"{title}: steps (fail=budget" + (f" of {budget})" if budget else ")"))
    # Under each success bar: its wins of episodes and rate, as in the tables.
    wins = [f"{r['arm']}\n{r['successes']}/{r['n']} ({100 * r['success_rate']:.0f}%)" for r in rows]
    for ax, names in ((a1, wins), (a2, labels)):
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def learning_curves(title: str, curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> bytes:
    """Success per group of tasks for each condition (memory updated between groups)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for arm, pts in curves.items():
        xs = [p["group"] + 1 for p in pts]
        a1.plot(xs, [100 * p["success_rate"] for p in pts], marker="o", label=arm)
        a2.plot(xs, [100 * p["cumulative_success_rate"] for p in pts], marker="o", label=arm)
    a1.set_title(f"{title}: success per group")
    a2.set_title(f"{title}: cumulative success")
    for ax in (a1, a2):
        ax.set_xlabel("group of tasks")
        ax.set_ylabel("success rate (%)")
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def topk_curve(title: str, families: Mapping[str, Sequence[Mapping[str, Any]]]) -> bytes:
    """Success rate against the number of retrieved procedures (retrieval scaling)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for fam, pts in families.items():
        ks = [p["k"] for p in pts]
        rate = [100 * p["success_rate"] for p in pts]
        ax.errorbar(ks, rate, yerr=_ci_bars(pts), marker="o", capsize=3, label=fam)
    ax.set_xlabel("k (procedures retrieved)")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"{title}: retrieval scaling")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
