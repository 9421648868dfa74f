"""Inspecting runs: list run directories, show a run's table or one episode's trajectory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from memp.errors import NotFound
from memp.experiment.rundb import RunDB

DEFAULT_ROOT = Path("runs")


def resolve_run(run: str | Path, root: str | Path = DEFAULT_ROOT) -> Path:
    """A run is a directory with a run.db; a bare name is looked up under ``root``."""
    p = Path(run)
    for cand in (p, Path(root) / p):
        if (cand / "run.db").is_file():
            return cand
        if cand.is_file() and cand.name == "run.db":
            return cand.parent
    raise NotFound(
        f"no run {str(run)!r} (looked for {p}/run.db and {Path(root) / p}/run.db); "
        "list runs with `memp runs list`"
    )


def list_runs(root: str | Path = DEFAULT_ROOT) -> list[dict[str, Any]]:
    root = Path(root)
    out = []
    if not root.is_dir():
        return out
    for db_path in sorted(root.glob("**/run.db")):
        with RunDB(db_path) as db:
            rows = db.episodes(phase="eval")
            out.append(
                {
                    "run": str(db_path.parent),
                    "name": db.get_meta("name") or "",
                    "started_at": db.get_meta("started_at") or "",
                    "episodes": len(rows),
                    "successes": sum(r.success for r in rows),
                    "conditions": len({r.arm for r in rows}),
                    "errors": len(db.errors()),
                }
            )
    return out


def print_runs(root: str | Path = DEFAULT_ROOT, console: Console | None = None) -> None:
    console = console or Console()
    runs = list_runs(root)
    if not runs:
        console.print(f"no runs under {root}/ (start one with `memp run experiments/<x>.toml`)")
        return
    t = Table(title=f"runs under {root}/")
    for col in ("run", "name", "started", "conditions", "eval episodes", "won", "errors"):
        t.add_column(col)
    for r in runs:
        t.add_row(
            r["run"],
            r["name"],
            r["started_at"],
            str(r["conditions"]),
            str(r["episodes"]),
            str(r["successes"]),
            str(r["errors"]),
        )
    console.print(t)


def print_run(run: Path, console: Console | None = None) -> None:
    """The run's condition table and its episode list (numbers for ``--episode``)."""
    from memp.experiment.report import print_summary, summarize

    console = console or Console()
    with RunDB.open_existing(run) as db:
        print_summary(summarize(db), console)
        t = Table(title="episodes (use --episode # to see one)")
        for col in (
            "#",
            "phase",
            "env",
            "condition",
            "episode",
            "group",
            "won",
            "steps",
            "tokens",
            "s",
            "task",
        ):
            t.add_column(col)
        for r in db.episodes(phase=None):
            t.add_row(
                str(r.id),
                r.phase,
                r.env,
                r.arm,
                str(r.episode),
                str(r.group),
                "yes" if r.success else "no",
                str(r.steps),
                str(r.prompt_tokens + r.completion_tokens),
                f"{r.wall_s:.1f}",
                (r.task or "")[:60],
            )
        console.print(t)


def print_episode(
    run: Path,
    episode: int,
    *,
    condition: str | None = None,
    env: str | None = None,
    console: Console | None = None,
) -> None:
    """One episode's full trajectory: task, each thought / action / observation, totals.

    With ``condition``, ``episode`` is the environment's episode index under that
    condition; without, it is the run's episode number (the ``#`` column).
    """
    console = console or Console()
    with RunDB.open_existing(run) as db:
        row = (
            db.find_episode(arm=condition, episode=episode, env=env)
            if condition
            else db.episode(episode)
        )
        traj = db.trajectory(row.id)
    console.print(
        f"[bold]#{row.id}[/bold] {row.phase} · env {row.env} · condition {row.arm} · "
        f"episode {row.episode} · group {row.group} · seed {row.seed}"
    )
    console.print(f"[bold]task:[/bold] {traj.task}")
    retrieved = traj.metadata.get("retrieved")
    if retrieved:
        console.print(f"[bold]retrieved:[/bold] {retrieved}")
    for i, s in enumerate(traj.steps, 1):
        who = f" [{s.actor}]" if s.actor else ""
        if s.thought:
            console.print(f"[dim]{i:>3}{who} think: {s.thought}[/dim]", markup=True)
        console.print(f"{i:>3}{who} > [cyan]{s.action}[/cyan]")
        if s.observation:
            console.print(f"      {s.observation.strip()}", markup=False)
    verdict = "[green]WON[/green]" if traj.success else "[red]LOST[/red]"
    console.print(
        f"{verdict} in {len(traj.steps)} steps · prompt tokens {traj.prompt_tokens} · "
        f"completion tokens {traj.completion_tokens} · {row.wall_s:.1f} s"
    )
