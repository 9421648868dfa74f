"""`memp run`, `memp runs ...` and `memp demo`: experiments and their reports."""

from __future__ import annotations

from typing import Any

import typer

from memp.cli.errors import resumable

app = typer.Typer()
runs = typer.Typer(help="Experiment runs.", no_args_is_help=True)

_RUN_ARG = typer.Argument(..., help="Run directory or name under runs/.")
_ROOT_OPT = typer.Option("runs", "--root")


def _print_report(summary: Any, run_dir: str) -> None:
    from memp.experiment.report import print_summary

    print_summary(summary)
    typer.echo(f"report: {run_dir}/report.html (+ report.md, report.json)")


def _experiment_data(
    experiment: str,
    sets: list[str],
    *,
    model: str | None,
    mode: str | None,
    episodes: int | None,
    train_episodes: int | None,
    only: str | None,
) -> dict[str, Any]:
    """The experiment's TOML with the command's shortcuts applied as ``--set`` overrides."""
    from memp.experiment.config import apply_overrides, load_raw

    sets = list(sets)
    if model:
        sets.append(f"models={[model]!r}")
    if mode:
        sets.append(f"conditions.*.mode={mode!r}")
    if episodes is not None:
        sets.append(f"env.*.eval_episodes={episodes}")
    if train_episodes is not None:
        sets.append(f"env.*.train_episodes={train_episodes}")
    data = apply_overrides(load_raw(experiment), sets)
    if only:
        keep = {c.strip() for c in only.split(",") if c.strip()}
        names = [c.get("name") for c in data.get("conditions", [])]
        missing = keep - set(names)
        if missing:
            raise typer.BadParameter(f"unknown conditions {sorted(missing)}; have {names}")
        data["conditions"] = [c for c in data["conditions"] if c.get("name") in keep]
        if len(keep) < len(names):
            data["subset_of"] = names
        if isinstance(target := data.get("target"), dict):
            # the target judges what is kept: a condition left out is not judged
            if "conditions" in target:
                target["conditions"] = [c for c in target["conditions"] if c in keep]
                if not target["conditions"]:
                    data.pop("target")
            if target.get("baseline") not in (None, *keep):
                data.pop("target", None)
    if mode:
        # Executable mode only applies to conditions that have a memory.
        for c in data.get("conditions", []):
            if c.get("memory", "none") == "none" and c.get("update", "none") == "none":
                c["mode"] = "prompt"
    return data


@app.command("run")
def run_cmd(
    experiment: str = typer.Argument(..., help="Experiment TOML file (see experiments/)."),
    executor: str = typer.Option(None, "--executor", help="local (process pool) | ray | inline."),
    workers: int = typer.Option(None, "--workers", help="Worker processes / Ray actors."),
    address: str = typer.Option(
        None, "--address", help="Ray cluster address (default: local Ray)."
    ),
    out: str = typer.Option(None, "--out", help="Run directory (default runs/<experiment name>)."),
    model: str = typer.Option(
        None, "--model", help="Evaluate this LLM spec instead of the config's."
    ),
    mode: str = typer.Option(
        None, "--mode", help="Run every memory condition as prompt | executable."
    ),
    episodes: int = typer.Option(None, "--episodes", help="Held-out episodes per environment."),
    train_episodes: int = typer.Option(None, "--train-episodes", help="Training episodes per env."),
    only: str = typer.Option(None, "--conditions", help="Comma-separated subset of conditions."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override any key: env.*.eval_split=dev, k=2 ..."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Delete an existing run in --out first."),
    reuse: list[str] = typer.Option(
        [],
        "--reuse",
        help="Copy identical finished episodes/memories from this run instead of replaying "
        "them (repeatable).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Run (or resume) an experiment and write its report (Markdown, HTML, JSON).

    --reuse RUN_DIR copies identical finished episodes and memories of an earlier run.
    """
    from memp.experiment.config import parse_config
    from memp.experiment.runner import run_experiment

    with resumable("finished episodes are saved; re-run the same command to resume"):
        data = _experiment_data(
            experiment,
            set_,
            model=model,
            mode=mode,
            episodes=episodes,
            train_episodes=train_episodes,
            only=only,
        )
        cfg = parse_config(data, origin=experiment)
        run_dir = out or f"runs/{cfg.name}"
        summary = run_experiment(
            cfg,
            run_dir,
            executor=executor,
            workers=workers,
            address=address,
            fresh=fresh,
            progress=progress,
            reuse=list(reuse) or None,
        )
    _print_report(summary, run_dir)


@app.command("demo")
def demo_cmd(
    ctx: typer.Context,
    out: str = typer.Option("runs/demo", "--out", help="Run directory."),
    games: int = typer.Option(12, "--games", help="Held-out ALFWorld-like games to evaluate."),
    train: int = typer.Option(24, "--train", help="Training games memory is built from."),
    model: str = typer.Option("local", "--model", help="LLM spec."),
    executor: str = typer.Option("local", "--executor"),
    workers: int = typer.Option(None, "--workers"),
    fresh: bool = typer.Option(False, "--fresh"),
) -> None:
    """No memory vs executable procedural memory on generated ALFWorld-like games."""
    from memp.experiment.demo import run_demo

    summary = run_demo(**ctx.params)  # the options are its keyword arguments
    _print_report(summary, out)


@runs.command("list")
def runs_list(
    root: str = typer.Option("runs", "--root", help="Folder holding run directories."),
) -> None:
    """List the runs under a folder."""
    from memp.experiment.runs import print_runs

    print_runs(root)


@runs.command("show")
def runs_show(
    run: str = _RUN_ARG,
    episode: int = typer.Option(None, "--episode", help="Episode # (or index with --condition)."),
    condition: str = typer.Option(
        None, "--condition", help="Condition whose episode index to show."
    ),
    env: str = typer.Option(None, "--env", help="Environment, when several have that episode."),
    root: str = _ROOT_OPT,
) -> None:
    """Show a run's results, or one episode's full trajectory with --episode."""
    from memp.experiment.runs import print_episode, print_run, resolve_run

    path = resolve_run(run, root)
    if episode is None:
        print_run(path)
    else:
        print_episode(path, episode, condition=condition, env=env)


@runs.command("report")
def runs_report(run: str = _RUN_ARG, root: str = _ROOT_OPT) -> None:
    """Regenerate a run's report files from its database."""
    from memp.experiment.report import write_report
    from memp.experiment.rundb import RunDB
    from memp.experiment.runs import resolve_run

    path = resolve_run(run, root)
    with RunDB.open_existing(path) as db:
        summary = write_report(db, path)
    _print_report(summary, str(path))
