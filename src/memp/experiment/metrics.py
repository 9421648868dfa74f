"""Per-condition metrics: success rate with a 95% Wilson interval, steps, tokens, time.

Steps have one definition everywhere (tables, plots, step cuts, targets): the mean over
episodes with a failed episode counted as the whole step budget, so an agent that gives
up early (loop guard, no skill) does not look efficient.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from memp.experiment.rundb import EpisodeRow


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and behaves at 0/n and n/n,
    which is where small agent studies often are.
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # The bounds touch 0 and 1 exactly at 0/n and n/n (rounding would leave them a hair off).
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


class ConditionMetrics(BaseModel):
    env: str
    arm: str
    model: str | None = None
    n: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    # Failed episodes count as the whole step budget (as played when no budget is known).
    # The only steps figure reports show; step cuts and targets are computed on it.
    mean_steps: float
    # The episodes as played, failures at the step they stopped: kept for reference only.
    mean_steps_played: float
    mean_steps_success: float | None
    step_budget: int | None = None
    prompt_tokens: int
    completion_tokens: int
    mean_prompt_tokens: float
    mean_completion_tokens: float
    # Total tokens spent divided by the number of successes (None when nothing succeeded).
    tokens_per_success: float | None
    wall_s: float
    mean_wall_s: float


# One budget for every episode, or each episode's own (episode -> budget, as a benchmark
# with tasks of very different lengths sets them: Env.step_budget).
StepBudget = int | Mapping[int, int] | None


def _budget_of(r: EpisodeRow, step_budget: StepBudget) -> int | None:
    if isinstance(step_budget, Mapping):
        return step_budget.get(r.episode)
    return step_budget


def condition_metrics(
    env: str, arm: str, rows: Sequence[EpisodeRow], step_budget: StepBudget = None
) -> ConditionMetrics:
    n = len(rows)
    wins = sum(r.success for r in rows)
    lo, hi = wilson_interval(wins, n)
    pt = sum(r.prompt_tokens for r in rows)
    ct = sum(r.completion_tokens for r in rows)
    steps_ok = [r.steps for r in rows if r.success]
    wall = sum(r.wall_s for r in rows)
    return ConditionMetrics(
        env=env,
        arm=arm,
        model=rows[0].model if rows else None,
        n=n,
        successes=wins,
        success_rate=wins / n if n else 0.0,
        ci_low=lo,
        ci_high=hi,
        mean_steps=mean_steps(rows, step_budget),
        mean_steps_played=_mean(r.steps for r in rows),
        mean_steps_success=_mean(steps_ok) if steps_ok else None,
        step_budget=step_budget if isinstance(step_budget, int) else None,
        prompt_tokens=pt,
        completion_tokens=ct,
        mean_prompt_tokens=pt / n if n else 0.0,
        mean_completion_tokens=ct / n if n else 0.0,
        tokens_per_success=(pt + ct) / wins if wins else None,
        wall_s=wall,
        mean_wall_s=wall / n if n else 0.0,
    )


def mean_steps(rows: Sequence[EpisodeRow], step_budget: StepBudget = None) -> float:
    """Mean steps with each failed episode counted as the whole step budget (its own,
    where episodes have their own)."""
    out = []
    for r in rows:
        b = _budget_of(r, step_budget)
        out.append(r.steps if r.success or b is None else max(r.steps, b))
    return _mean(out)


def _mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def group_curve(rows: Sequence[EpisodeRow], step_budget: StepBudget = None) -> list[dict[str, Any]]:
    """Success per group of tasks (and cumulative), for learning curves."""
    groups = sorted({r.group for r in rows})
    out = []
    seen = 0
    won = 0
    for g in groups:
        rs = [r for r in rows if r.group == g]
        w = sum(r.success for r in rs)
        seen += len(rs)
        won += w
        lo, hi = wilson_interval(w, len(rs))
        out.append(
            {
                "group": g,
                "n": len(rs),
                "successes": w,
                "success_rate": w / len(rs) if rs else 0.0,
                "ci_low": lo,
                "ci_high": hi,
                "cumulative_success_rate": won / seen if seen else 0.0,
                "mean_steps": mean_steps(rs, step_budget),
            }
        )
    return out


def compare(base: ConditionMetrics, other: ConditionMetrics) -> dict[str, Any]:
    """How a condition compares with the baseline: success points and step reduction."""
    b, o = base.mean_steps, other.mean_steps
    steps_cut = (b - o) / b if b else None
    return {
        "baseline": base.arm,
        "condition": other.arm,
        "success_points": round(100 * (other.success_rate - base.success_rate), 2),
        "steps_reduction": None if steps_cut is None else round(steps_cut, 4),
    }
