"""Reports of a run: JSON (every number), Markdown, and a self-contained HTML page.

The numbers are computed from the run database alone, so a report can be regenerated
at any time (``memp runs report RUN``) and a partial run reports what it has.
"""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from memp.experiment import plots
from memp.experiment.config import ExperimentConfig, TargetConfig
from memp.experiment.metrics import (
    StepBudget,
    compare,
    condition_metrics,
    group_curve,
    mean_steps,
)
from memp.experiment.reuse import describe_reused
from memp.experiment.rundb import RunDB

# What a point of a top-k curve keeps of its condition's metrics.
_POINT_KEYS = ("successes", "n", "success_rate", "ci_low", "ci_high", "mean_steps", "step_budget")


def summarize(db: RunDB, config: ExperimentConfig | None = None) -> dict[str, Any]:
    """Every number of the run as plain JSON-able data."""
    if config is None:
        raw = db.get_meta("config")
        config = ExperimentConfig.model_validate(raw) if raw else None
    arms = config.arms() if config else []
    arm_cfg = {a.label: a for a in arms}
    rows = db.episodes(phase="eval")
    envs = [e.key for e in config.env] if config else sorted({r.env for r in rows})
    order = [a.label for a in arms] or sorted({r.arm for r in rows})

    conditions: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    against: dict[str, dict[str, dict[str, Any]]] = {}  # env -> arm -> vs the target's baseline
    curves: dict[str, dict[str, Any]] = {}
    typed_curves: dict[str, dict[str, dict[str, list[list[int]]]]] = {}
    topk: dict[str, dict[str, list[dict[str, Any]]]] = {}
    by_type: dict[str, dict[str, dict[str, Any]]] = {}
    env_metrics: dict[str, dict[str, dict[str, float]]] = {}
    env_rates: dict[str, list[str]] = {}  # env -> its metrics that are rates (shown as %)
    budgets = {e.key: e.agent_config(config.agent).max_steps for e in config.env} if config else {}
    for env in envs:
        env_rows = [r for r in rows if r.env == env]
        by_arm = {a: [r for r in env_rows if r.arm == a] for a in order}
        # each episode's metadata read once: the budgets and breakdowns below come from it
        meta = {r.id: db.trajectory(r.id).metadata for rs in by_arm.values() for r in rs}
        own_budget = {
            r.episode: int(meta[r.id]["step_budget"])
            for rs in by_arm.values()
            for r in rs
            if meta[r.id].get("step_budget") is not None
        }
        budget = own_budget or budgets.get(env)
        mets = {}
        cms = {a: condition_metrics(env, a, rs, budget) for a, rs in by_arm.items() if rs}
        for a, cm in cms.items():
            rs = by_arm[a]
            m = cm.model_dump()
            calls = [meta[r.id]["llm_calls"] for r in rs if "llm_calls" in meta[r.id]]
            # LLM calls per episode, over the episodes that recorded them (a run begun
            # before they were recorded has some without); the table says how many
            m["mean_llm_calls"] = sum(calls) / len(calls) if calls else None
            m["llm_calls_recorded"] = len(calls)
            if a in arm_cfg:
                c = arm_cfg[a].condition
                m["condition"] = c.model_dump(mode="json")
                m["model"] = arm_cfg[a].model
            mets[a] = m
            conditions.append(m)
        # Baseline: the first condition without memory, per evaluated model.
        for a in mets:
            base = _baseline(a, mets, arm_cfg)
            if base is not None and base != a:
                comparisons.append({"env": env, **compare(cms[base], cms[a])})
        # the target's own baseline, where it names one
        chosen = config.target.baseline if config and config.target else None
        if chosen in mets:
            against[env] = {a: compare(cms[chosen], cms[a]) for a in mets if a != chosen}
        if types := _by_type(meta, by_arm, budget):
            by_type[env] = types
        own = {a: m for a, m in _episode_metrics(meta, by_arm).items() if m}
        for a, m in own.items():  # what a [target] on the benchmark's metrics reads
            if a in mets:
                mets[a]["benchmark"] = {k: (100 * v if k in m.rates else v) for k, v in m.items()}
        if own:
            env_metrics[env] = own
            env_rates[env] = sorted(set().union(*(m.rates for m in own.values())))
        if config and config.groups > 1:
            curves[env] = {a: group_curve(rs, budget) for a, rs in by_arm.items() if rs}
            if typed := _curve_by_type(meta, by_arm, config.groups):
                typed_curves[env] = typed
        fams: dict[str, list[dict[str, Any]]] = {}
        for a, m in mets.items():
            if a not in arm_cfg or arm_cfg[a].condition.memory == "none":
                continue
            c = arm_cfg[a].condition
            fam = f"{c.memory}/{c.retrieve}/{c.mode}/{arm_cfg[a].model}"
            if c.mode == "executable":
                # arms that differ in more than k are separate curves
                fam += "" if c.use_llm else "/no LLM"
                fam += "/similarity only" if c.skill.get("template_retrieval") is False else ""
            fams.setdefault(fam, []).append(
                {
                    "k": c.k,
                    "arm": a,
                    **{x: m[x] for x in _POINT_KEYS},
                }
            )
        fams = {
            f: sorted(p, key=lambda p: p["k"])
            for f, p in fams.items()
            if len({x["k"] for x in p}) > 1
        }
        if fams:
            topk[env] = fams

    all_rows = db.episodes(phase=None)
    return {
        "name": db.get_meta("name") or (config.name if config else ""),
        "description": config.description if config else "",
        "fingerprint": db.get_meta("fingerprint"),
        "started_at": db.get_meta("started_at"),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.model_dump(mode="json") if config else None,
        "environments": envs,
        "conditions": conditions,
        "comparisons": comparisons,
        "best": _best(comparisons),
        "target": _target(conditions, comparisons, config, envs, against),
        "by_type": by_type,
        "env_metrics": env_metrics,
        "env_rates": env_rates,
        "published": [p.model_dump(mode="json") for p in config.published] if config else [],
        "curves": curves,
        "typed_curves": typed_curves,
        "topk": topk,
        "memories": db.memories(),
        "updates": db.updates(),
        "errors": db.errors(),
        "totals": {
            "eval_episodes": len(rows),
            "planned_eval_episodes": (
                sum(
                    len(e.eval_indices())
                    for e in config.env
                    for a in config.arms()
                    if a.condition.plays_in(e.key)
                )
                if config
                else None
            ),
            "collect_episodes": sum(r.phase == "collect" for r in all_rows),
            "episode_wall_s": round(sum(r.wall_s for r in all_rows), 2),
            "last_invocation_wall_s": db.get_meta("wall_s_last_invocation"),
        },
        # Units copied from other runs (memp run --reuse): run -> kind -> count.
        "reused": db.get_meta("reused") or {},
    }


def _by_type(
    meta: dict[int, dict[str, Any]], by_arm: dict[str, list[Any]], budget: StepBudget
) -> dict[str, dict[str, Any]]:
    """Task type -> arm -> wins, n and steps (fail=budget), where episodes record a type."""
    rows: dict[str, dict[str, list[Any]]] = {}
    for arm, rs in by_arm.items():
        for r in rs:
            kind = meta[r.id].get("task_type")
            if kind:
                rows.setdefault(str(kind), {}).setdefault(arm, []).append(r)
    return {
        kind: {arm: _type_cell(meta, rs, budget) for arm, rs in arms.items()}
        for kind, arms in sorted(rows.items())
    }


def _curve_by_type(
    meta: dict[int, dict[str, Any]], by_arm: dict[str, list[Any]], groups: int
) -> dict[str, dict[str, list[list[int]]]]:
    """Arm -> task type -> [wins, n, LLM calls] per group: whether memory learns the
    types it lacked while the types it had hold, and whether what it learned still
    needs the LLM (calls -1 where episodes did not record them)."""
    out: dict[str, dict[str, list[list[int]]]] = {}
    for arm, rs in by_arm.items():
        for r in rs:
            kind = meta[r.id].get("task_type")
            if kind and 0 <= r.group < groups:
                cells = out.setdefault(arm, {}).setdefault(
                    str(kind), [[0, 0, 0] for _ in range(groups)]
                )
                cell = cells[r.group]
                cell[0] += int(r.success)
                cell[1] += 1
                calls = meta[r.id].get("llm_calls")
                cell[2] = -1 if calls is None or cell[2] < 0 else cell[2] + int(calls)
    return {arm: dict(sorted(types.items())) for arm, types in out.items()}


def _calls(m: dict[str, Any]) -> str:
    if m.get("mean_llm_calls") is None:
        return "-"
    text = f"{m['mean_llm_calls']:.1f}"
    recorded = m.get("llm_calls_recorded", m["n"])
    return text if recorded >= m["n"] else f"{text} ({recorded} of {m['n']} ep)"


def _typed_cell(wins: int, n: int, calls: int) -> str:
    if not n:
        return "-"
    return f"{wins}/{n}" + (f" · {calls / n:.1f}" if calls >= 0 else "")


def _type_cell(
    meta: dict[int, dict[str, Any]], rs: list[Any], budget: StepBudget
) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "n": len(rs),
        "successes": sum(r.success for r in rs),
        "mean_steps": mean_steps(rs, budget),
    }
    # the benchmark's own numbers (a ScienceWorld score), averaged per type as well
    means = _episode_metrics(meta, {"": rs})[""]
    if numbers := {k: v for k, v in means.items() if k not in means.rates}:
        cell["metrics"] = numbers
    return cell


class _Metrics(dict[str, float]):
    """An arm's benchmark metrics; ``rates``: the names summed as [passed, total] pairs."""

    rates: set[str]


def _episode_metrics(
    meta: dict[int, dict[str, Any]], by_arm: dict[str, list[Any]]
) -> dict[str, dict[str, float]]:
    """Arm -> the environment's own metrics (episode metadata "metrics") over its episodes:
    a number is averaged, a [passed, total] pair is summed as passed / total."""
    out: dict[str, _Metrics] = {}
    for arm, rs in by_arm.items():
        sums: dict[str, list[float]] = {}
        rates: set[str] = set()
        for r in rs:
            for name, v in (meta[r.id].get("metrics") or {}).items():
                if isinstance(v, list | tuple):
                    num, den = v[0], v[1]
                    rates.add(name)
                else:
                    num, den = v, 1
                acc = sums.setdefault(name, [0.0, 0.0])
                acc[0] += float(num)
                acc[1] += float(den)
        m = _Metrics({k: (n / d if d else 0.0) for k, (n, d) in sums.items()})
        m.rates = rates
        out[arm] = m
    return out


def _baseline(arm: str, mets: dict[str, Any], arm_cfg: dict[str, Any]) -> str | None:
    model = arm_cfg[arm].model if arm in arm_cfg else None
    for a in mets:
        cfg = arm_cfg.get(a)
        if cfg is None:
            continue
        c = cfg.condition
        if c.memory == "none" and c.update == "none" and cfg.model == model:
            return a
    return None


# -- rendering -----------------------------------------------------------------

# The one steps figure of every table and plot: failures count as the whole step budget.
_STEPS = "steps (fail=budget)"
_SUCCESS = "success (95% CI)"

_HEAD = [
    "condition",
    "mode",
    "memory",
    "retrieve",
    "k",
    "update",
    "n",
    _SUCCESS,
    _STEPS,
    "LLM calls/ep",
    "prompt tok/ep",
    "compl. tok/ep",
    "tokens/success",
    "s/ep",
]


def _cells(m: dict[str, Any]) -> list[str]:
    c = m.get("condition") or {}
    mem = c.get("memory", "?")
    tps = m["tokens_per_success"]
    return [
        m["arm"],
        c.get("mode", "?") if mem != "none" else "-",
        mem,
        c.get("retrieve", "-") if mem != "none" else "-",
        str(c.get("k", "-")) if mem != "none" else "-",
        c.get("update", "none"),
        str(m["n"]),
        _success(m),
        f"{m['mean_steps']:.1f}",
        _calls(m),
        f"{m['mean_prompt_tokens']:.0f}",
        f"{m['mean_completion_tokens']:.0f}",
        "-" if tps is None else f"{tps:.0f}",
        f"{m['mean_wall_s']:.1f}",
    ]


def _success(m: dict[str, Any]) -> str:
    """Wins of episodes, rate and 95% interval: "46/50 (92%, CI 81-97)"."""
    return (
        f"{m['successes']}/{m['n']} ({100 * m['success_rate']:.0f}%, "
        f"CI {100 * m['ci_low']:.0f}-{100 * m['ci_high']:.0f})"
    )


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    # The success column ("46/50 (92%, CI 81-97)") stays on one line.
    cls = ["" if x != _SUCCESS else " class='nowrap'" for x in head]
    h = "".join(f"<th{c}>{html.escape(x)}</th>" for c, x in zip(cls, head, strict=True))
    b = "".join(
        "<tr>"
        + "".join(f"<td{c}>{html.escape(x)}</td>" for c, x in zip(cls, r, strict=True))
        + "</tr>"
        for r in rows
    )
    return f"<div class='scroll'><table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table></div>"


def _inline(text: str) -> str:
    """Plain text with Markdown inline code (`x`) as HTML: escaped, backticks as <code>."""
    parts = re.split(r"`([^`]+)`", text)
    return "".join(
        f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts)
    )


def _sections(s: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by Markdown and HTML."""
    out = []
    for env in s["environments"]:
        rows = [_cells(m) for m in s["conditions"] if m["env"] == env]
        out.append((f"{env}: conditions", _HEAD, rows))
        comp = [c for c in s["comparisons"] if c["env"] == env]
        if comp:
            out.append(
                (
                    f"{env}: against no memory",
                    ["condition", "baseline", "success (points)", "steps cut (fail=budget)"],
                    [
                        [
                            c["condition"],
                            c["baseline"],
                            f"{c['success_points']:+.1f}",
                            "-"
                            if c["steps_reduction"] is None
                            else f"{100 * c['steps_reduction']:.1f}%",
                        ]
                        for c in comp
                    ],
                )
            )
        if types := (s.get("by_type") or {}).get(env):
            arms = [a for a in dict.fromkeys(a for cell in types.values() for a in cell)]
            out.append(
                (
                    f"{env}: by task type (wins/n, steps fail=budget)",
                    ["task type", *arms],
                    [
                        [kind]
                        + [
                            f"{c['successes']}/{c['n']} · {c['mean_steps']:.1f}"
                            + "".join(
                                f" · {k} {v:.1f}" for k, v in (c.get("metrics") or {}).items()
                            )
                            if (c := cells.get(a))
                            else "-"
                            for a in arms
                        ]
                        for kind, cells in types.items()
                    ],
                )
            )
        if own := (s.get("env_metrics") or {}).get(env):
            names = list(dict.fromkeys(k for m in own.values() for k in m))
            # runs reported before env_rates existed held rates only
            rates = set((s.get("env_rates") or {}).get(env, names))
            out.append(
                (
                    f"{env}: the benchmark's metrics",
                    ["condition", *(f"{k} (%)" if k in rates else f"{k} (mean)" for k in names)],
                    [
                        [arm]
                        + [
                            "-" if k not in m else f"{(100 if k in rates else 1) * m[k]:.1f}"
                            for k in names
                        ]
                        for arm, m in own.items()
                    ],
                )
            )
        if typed := (s.get("typed_curves") or {}).get(env):
            groups = s["config"]["groups"]  # a typed curve exists only with a config
            out.append(
                (
                    f"{env}: learning curve by task type (wins/n, LLM calls/ep, per group)",
                    ["condition", "task type", *(f"group {g + 1}" for g in range(groups))],
                    [
                        [arm, kind, *(_typed_cell(*c) for c in cells)]
                        for arm, types in typed.items()
                        for kind, cells in types.items()
                    ],
                )
            )
        for arm, pts in (s["curves"].get(env) or {}).items():
            out.append(
                (
                    f"{env}: learning curve of {arm}",
                    ["group", "n", _SUCCESS, "cumulative success", _STEPS],
                    [
                        [
                            str(p["group"] + 1),
                            str(p["n"]),
                            _success(p),
                            f"{100 * p['cumulative_success_rate']:.0f}%",
                            f"{p['mean_steps']:.1f}",
                        ]
                        for p in pts
                    ],
                )
            )
        for fam, pts in (s["topk"].get(env) or {}).items():
            out.append(
                (
                    f"{env}: top-k ({fam})",
                    ["k", "condition", "n", _SUCCESS, _STEPS],
                    [
                        [
                            str(p["k"]),
                            p["arm"],
                            str(p["n"]),
                            _success(p),
                            f"{p['mean_steps']:.1f}",
                        ]
                        for p in pts
                    ],
                )
            )
    if pub := s.get("published"):
        keys = list(dict.fromkeys(k for p in pub for k in p["metrics"]))
        out.append(
            (
                "published results (other systems and models, not run here)",
                ["source", "model", "condition", "split", *keys],
                [
                    [p["source"], p["model"], p["condition"], p["split"] or "-"]
                    + [f"{p['metrics'][k]:g}" if k in p["metrics"] else "-" for k in keys]
                    for p in pub
                ],
            )
        )
    if s["memories"]:
        out.append(
            (
                "memories built",
                ["env", "source", "build", "builder", "procedures", "build s", "tokens"],
                [
                    [
                        m["env"],
                        m["source"],
                        m["build"],
                        m["builder"],
                        str(m["procedures"]),
                        f"{m['wall_s']:.1f}",
                        str(m["prompt_tokens"] + m["completion_tokens"]),
                    ]
                    for m in s["memories"]
                ],
            )
        )
    return out


def _plots(s: dict[str, Any]) -> list[tuple[str, bytes]]:
    figs = []
    for env in s["environments"]:
        rows = [m for m in s["conditions"] if m["env"] == env]
        if rows:
            figs.append((f"{env}: success and steps", plots.condition_bars(env, rows)))
        if s["curves"].get(env):
            figs.append((f"{env}: learning curves", plots.learning_curves(env, s["curves"][env])))
        if s["topk"].get(env):
            figs.append((f"{env}: retrieval scaling", plots.topk_curve(env, s["topk"][env])))
    return figs


def _best(comparisons: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per environment, the condition furthest ahead of its no-memory baseline."""
    best: dict[str, dict[str, Any]] = {}
    for c in comparisons:
        cur = best.get(c["env"])
        rank = (c["success_points"], c["steps_reduction"] or 0.0)
        if cur is None or rank > (cur["success_points"], cur["steps_reduction"] or 0.0):
            best[c["env"]] = c
    return best


def _target(
    conditions: list[dict[str, Any]],
    comparisons: list[dict[str, Any]],
    config: ExperimentConfig | None,
    envs: list[str],
    against: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, dict[str, Any]]:
    """Per environment, whether some judged condition reaches the experiment's [target]."""
    if config is None or config.target is None:
        return {}
    t = config.target
    out: dict[str, dict[str, Any]] = {}
    for env in envs:
        # the conditions judged here by the config, played or not
        planned = [
            a.label
            for a in config.arms()
            if a.condition.plays_in(env)
            and a.condition.memory != "none"
            and (not t.conditions or a.condition.name in t.conditions)
            and a.condition.name != t.baseline
        ]
        if not planned:
            continue  # no judged condition plays in this block
        if t.baseline:
            comp = against.get(env, {})
        else:
            comp = {c["condition"]: c for c in comparisons if c["env"] == env}
        judged = [m for m in conditions if m["env"] == env and m["arm"] in planned]
        met = [m["arm"] for m in judged if _meets(t, m, comp.get(m["arm"]))]
        out[env] = {
            **t.model_dump(mode="json"),
            "relative": t.relative,
            # False: nothing judged has played yet, or a relative goal and no baseline
            "compared": bool(judged) and (bool(comp) or not t.relative),
            "played": bool(judged),
            "met": bool(met),
            "met_by": met,
            "judged": [m["arm"] for m in judged],
            "planned": planned,
        }
    return out


def _meets(t: TargetConfig, m: dict[str, Any], comp: dict[str, Any] | None) -> bool:
    if t.relative:
        if comp is None:
            return False
        if t.within_points is not None and abs(comp["success_points"]) > t.within_points:
            return False
        if (t.success_points or t.steps_cut) and (
            comp["success_points"] < t.success_points
            or 100 * (comp["steps_reduction"] or 0.0) < t.steps_cut
        ):
            return False
    if t.success is not None and 100 * m["success_rate"] < t.success:
        return False
    own = m.get("benchmark") or {}
    if any(own.get(k, float("-inf")) < v for k, v in t.metrics.items()):
        return False
    return t.mean_steps is None or m["mean_steps"] <= t.mean_steps


def _goal(t: dict[str, Any]) -> str:
    parts = []
    base = repr(t["baseline"]) if t.get("baseline") else "no memory"
    if t.get("success_points") or t.get("steps_cut"):
        parts.append(
            f"{t['success_points']:+g} points of success and {t['steps_cut']:g}% fewer steps "
            f"against {base}"
        )
    if t.get("within_points") is not None:
        parts.append(f"success within {t['within_points']:g} points of {base}")
    if t.get("success") is not None:
        parts.append(f"success >= {t['success']:g}%")
    if t.get("mean_steps") is not None:
        parts.append(f"<= {t['mean_steps']:g} steps (fail=budget)")
    parts += [f"{k} >= {v:g}" for k, v in (t.get("metrics") or {}).items()]
    who = f" for {', '.join(repr(c) for c in t['conditions'])}" if t.get("conditions") else ""
    return "target " + (" and ".join(parts) or "none") + who


def _target_note(
    env: str, t: dict[str, Any], best: dict[str, Any] | None, mets: dict[str, dict[str, Any]]
) -> str:
    goal = _goal(t)
    if not t.get("played", True):
        waiting = ", ".join(repr(a) for a in t.get("planned") or [])
        return f"{env}: {goal} not judged yet: no episode of {waiting} has finished."
    if not t["compared"]:
        base = repr(t["baseline"]) if t.get("baseline") else "no condition without memory"
        return f"{env}: {goal} not judged: {base} has no episode to compare with."
    if t["met"]:
        return f"{env}: {goal} MET by {', '.join(repr(c) for c in t['met_by'])}."
    got = ""
    if t["relative"] and not t.get("baseline"):
        if best is not None:
            cut = best["steps_reduction"]
            got = (
                f"; the best, {best['condition']!r}, reaches {best['success_points']:+.1f} points"
                + (f" and {100 * cut:.1f}% fewer steps (fail=budget)" if cut is not None else "")
            )
    else:
        top = max(
            (mets[a] for a in t["judged"] if a in mets),
            default=None,
            key=lambda m: (m["success_rate"], -m["mean_steps"]),
        )
        if top is not None:
            got = (
                f"; the best, {top['arm']!r}, reaches {100 * top['success_rate']:.1f}% in "
                f"{top['mean_steps']:.1f} steps"
            )
            own = top.get("benchmark") or {}
            got += "".join(f", {k} {own[k]:.1f}" for k in t.get("metrics") or {} if k in own)
            if t.get("baseline") and t["baseline"] in mets:
                b = mets[t["baseline"]]
                got += f" ({t['baseline']!r}: {100 * b['success_rate']:.1f}%)"
    return f"{env}: {goal} MISSED{got}."


def _target_notes(s: dict[str, Any]) -> list[str]:
    best = s.get("best", {})
    out = []
    for env, t in (s.get("target") or {}).items():
        mets = {m["arm"]: m for m in s["conditions"] if m["env"] == env}
        out.append(_target_note(env, t, best.get(env), mets))
    return out


def _incomplete(s: dict[str, Any]) -> str | None:
    """The warning a partial run's report opens with (None when every episode is in)."""
    t = s["totals"]
    planned = t.get("planned_eval_episodes")
    out = []
    if planned and t["eval_episodes"] < planned:
        out.append(
            f"Incomplete run: {t['eval_episodes']} of {planned} planned evaluation episodes "
            "are in; every number here is over the episodes played so far. Re-running the "
            "same command resumes it."
        )
    config = s.get("config") or {}
    played = [c["name"] for c in config.get("conditions", [])]
    if missing := [c for c in config.get("subset_of") or [] if c not in played]:
        out.append(
            f"This run plays {len(played)} of the experiment's {len(config['subset_of'])} "
            f"conditions (--conditions {','.join(played)}); not played here: "
            f"{', '.join(missing)}. A full run (another --out) copies this one's episodes with --reuse."
        )
    return " ".join(out) or None


def _notes(s: dict[str, Any]) -> list[str]:
    t = s["totals"]
    notes = [
        f"{env}: best condition {c['condition']!r}, {c['success_points']:+.1f} points of success"
        + (
            f" and {100 * c['steps_reduction']:.1f}% fewer steps (fail=budget)"
            if c["steps_reduction"] is not None
            else ""
        )
        + f" against {c['baseline']!r}."
        for env, c in s.get("best", {}).items()
    ]
    notes += [
        f"Fingerprint `{s['fingerprint']}`, started {s['started_at']}, report generated "
        f"{s['generated_at']}.",
        f"{t['eval_episodes']} evaluation and {t['collect_episodes']} training episodes; "
        f"{t['episode_wall_s']:.0f} s of episode time in total.",
        "Success intervals are 95% Wilson score intervals. Tokens/success = all prompt and "
        "completion tokens of a condition divided by its successes. Steps are 'steps "
        "(fail=budget)' throughout: the mean over episodes with a failed episode counted as "
        "the whole step budget (so stopping early is not efficiency); every table, plot, step "
        "cut and target here uses it. The steps of the episodes as played (failures at the "
        "step they stopped) are only in report.json, as `mean_steps_played`.",
    ]
    if (reused := describe_reused(s.get("reused") or {})) is not None:
        notes.append(reused)
    if s["errors"]:
        notes.append(
            f"{len(s['errors'])} unit(s) raised errors (listed in report.json); "
            "re-running the same command retries them."
        )
    return notes


def render_markdown(s: dict[str, Any]) -> str:
    parts = [f"# {s['name']}", ""]
    if (partial := _incomplete(s)) is not None:
        parts += [f"> {partial}", ""]
    if verdict := _target_notes(s):
        parts += [f"- **{v}**" for v in verdict] + [""]
    if s["description"]:
        parts += [s["description"].strip(), ""]
    for title, head, rows in _sections(s):
        parts += [f"## {title}", "", _md_table(head, rows), ""]
    parts += ["## Notes", ""] + [f"- {n}" for n in _notes(s)] + [""]
    return "\n".join(parts)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.9rem}
th,td{border:1px solid #ccc;padding:0.25rem 0.5rem;text-align:right}
th{background:#f2f2f2} td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:0.5rem 0 1.5rem}
code{background:#f5f5f5;padding:0 0.2rem}
.nowrap{white-space:nowrap} .scroll{overflow-x:auto}
"""


def render_html(s: dict[str, Any], figures: list[tuple[str, bytes]] | None = None) -> str:
    figures = _plots(s) if figures is None else figures
    body = [f"<h1>{html.escape(s['name'])}</h1>"]
    if (partial := _incomplete(s)) is not None:
        body.append(f"<p><strong>{_inline(partial)}</strong></p>")
    if verdict := _target_notes(s):
        body.append("<ul>" + "".join(f"<li><strong>{_inline(v)}</strong></li>" for v in verdict)
                    + "</ul>")  # fmt: skip
    if s["description"]:
        body.append(f"<p>{_inline(s['description'].strip())}</p>")
    for title, png in figures:
        b64 = base64.b64encode(png).decode()
        body.append(
            f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{b64}'>"
        )
    for title, head, rows in _sections(s):
        body.append(f"<h2>{html.escape(title)}</h2>{_html_table(head, rows)}")
    body.append(
        "<h2>Notes</h2><ul>" + "".join(f"<li>{_inline(n)}</li>" for n in _notes(s)) + "</ul>"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(s['name'])}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def write_report(
    db: RunDB, out: str | Path, config: ExperimentConfig | None = None
) -> dict[str, Any]:
    """Write report.json, report.md and report.html into ``out``; return the summary."""
    out = Path(out)
    s = summarize(db, config)
    (out / "report.json").write_text(json.dumps(s, indent=2, default=str))
    (out / "report.md").write_text(render_markdown(s))
    (out / "report.html").write_text(render_html(s))
    return s


# The terminal table keeps the columns that decide the question; the files have all.
_COMPACT = ["condition", "n", _SUCCESS, _STEPS, "tokens/success", "s/ep"]


def print_summary(s: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for title, head, rows in _sections(s):
        if title == "memories built":
            continue
        if head == _HEAD:
            idx = [head.index(h) for h in _COMPACT]
            head, rows = _COMPACT, [[r[i] for i in idx] for r in rows]
        t = Table(title=title)
        for h in head:
            t.add_column(h)
        for r in rows:
            t.add_row(*r)
        console.print(t)
    for note in _target_notes(s):
        console.print(note)
