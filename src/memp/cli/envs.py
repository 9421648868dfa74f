"""`memp collect` and `memp alfworld ...`: environments and the trajectories they yield."""

from __future__ import annotations

from contextlib import ExitStack

import typer

from memp.cli.common import DB_OPT, NS_OPT, database, open_memory, print_table
from memp.errors import MempError

app = typer.Typer()
alfworld = typer.Typer(help="ALFWorld(-like) game data.", no_args_is_help=True)


@app.command("collect")
def collect_cmd(
    env: str = typer.Option(
        ..., "--env", help="alfworld | scienceworld | textworld | twx | travelplanner"
    ),
    split: str = typer.Option("train", "--split", help="Split of the environment."),
    policy: str = typer.Option(
        "expert", "--policy", help="expert (gold actions) | llm (ReAct agent)"
    ),
    n_episodes: int = typer.Option(10, "--episodes", min=1, help="Number of episodes."),
    old_n: int | None = typer.Option(None, "--n", min=1, hidden=True),  # before --episodes
    start: int = typer.Option(0, "--start", min=0, help="First episode index."),
    db: str | None = DB_OPT,
    namespace: str = NS_OPT,
    llm: str | None = typer.Option(
        None, "--llm", envvar="MEMP_LLM", help="LLM spec for --policy llm (default: local)."
    ),
    max_steps: int = typer.Option(30, "--max-steps", min=1, help="Step limit of the llm policy."),
    use_memory: bool = typer.Option(
        False, "--use-memory/--no-memory", help="llm policy: retrieve procedures from --db."
    ),
    embedder: str | None = typer.Option(
        None, "--embedder", envvar="MEMP_EMBEDDER", help="Embedder for --use-memory."
    ),
    data_dir: str | None = typer.Option(
        None,
        "--data",
        "--data-dir",
        help="ALFWorld games: an unpacked official folder, a split archive (valid_seen.tar.xz) or a folder of archives (default $ALFWORLD_DATA).",
    ),
    tp_db: str | None = typer.Option(
        None, "--db-dir", help="TravelPlanner database dir (or $MEMP_TRAVELPLANNER_DB)."
    ),
    tp_queries: str | None = typer.Option(
        None, "--queries", help="TravelPlanner query file/dir (or $MEMP_TRAVELPLANNER_QUERIES)."
    ),
    opt: list[str] = typer.Option(
        None,
        "--opt",
        help="Extra environment option key=value (repeatable), e.g. game=cookingworld.",
    ),
    out: str | None = typer.Option(
        None, "--out", help="Also write the trajectories to this JSONL file."
    ),
) -> None:
    """Run a policy on an environment and store the trajectories (memory's raw material)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from memp.envs import make_env
    from memp.errors import check_choice
    from memp.policies import ExpertPolicy, collect, parse_env_options

    check_choice("policy", policy, ("expert", "llm"))
    options = parse_env_options(opt)
    for key, value in (("data_dir", data_dir), ("db_dir", tp_db), ("queries", tp_queries)):
        if value:
            options[key] = value
    environment = make_env(env, split, **options)
    wins = steps = 0
    with ExitStack() as stack:
        stack.callback(environment.close)
        total = len(environment)
        if start >= total:
            raise MempError(f"--start {start} is past the end of the split ({total} episodes)")
        episodes = list(range(start, min(start + (old_n or n_episodes), total)))
        db = database(db, must_exist=False)
        memory = stack.enter_context(open_memory(db, namespace, embedder, must_exist=False))
        if policy == "expert":
            runner: object = ExpertPolicy()
        else:
            from memp.agent import ReActAgent
            from memp.llm import make_llm

            runner = ReActAgent(
                make_llm(llm), memory=memory if use_memory else None, max_steps=max_steps
            )
        sink = stack.enter_context(open(out, "a", encoding="utf-8")) if out else None
        columns = (
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("won {task.fields[wins]}"), TimeElapsedColumn(),
        )  # fmt: skip
        bar = stack.enter_context(Progress(*columns))
        task_id = bar.add_task(f"{env}/{split} {policy}", total=len(episodes), wins=0)

        def done(_ep: int, traj) -> None:
            nonlocal wins, steps
            wins += int(bool(traj.success))
            steps += len(traj.steps)
            if sink is not None:
                sink.write(traj.model_dump_json() + "\n")
                sink.flush()
            bar.update(task_id, advance=1, wins=wins)

        collect(environment, runner, episodes, memory=memory, on_episode=done)
    k = len(episodes)
    Console().print(
        f"stored {k} trajectories in {db} (namespace {namespace}): won {wins}/{k}, "
        f"mean steps {steps / max(k, 1):.1f}"
    )


@alfworld.command("generate")
def alfworld_generate_cmd(
    split: str = typer.Option("train", "--split", help="train | valid_seen | valid_unseen"),
    games: int = typer.Option(60, "--games", min=1, help="Number of solvable games to keep."),
    old_n: int | None = typer.Option(None, "--n", min=1, hidden=True),  # before --games
    seed: int = typer.Option(0, "--seed", help="Seed; (split, seed, games) fixes the games."),
    out: str | None = typer.Option(
        None, "--out", help="Output folder (default ~/.cache/memp/alfworld/<split>-seed<S>)."
    ),
    task_type: list[str] = typer.Option(
        None, "--task-type", help="Only these task types (repeatable; default all 6)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes (games are the same)."),
) -> None:
    """Generate ALFWorld-like games locally (layouts from the alfworld wheel, official converter, expert-checked)."""
    from rich.console import Console

    from memp.envs.alfworld.generate import TASK_TYPES, generate

    report = generate(
        split, old_n or games, seed, out, task_types=task_type or None, workers=workers
    )
    rows = []
    for t in TASK_TYPES:
        if report.attempts[t] or report.kept[t]:
            frac = report.solvable_fraction(t)
            shown = "-" if frac != frac else f"{frac:.0%}"  # NaN: nothing was checked
            rows.append([t, str(report.kept[t]), str(report.attempts[t]), shown])
    print_table(
        ["task type", "kept", "checked", "solvable"],
        rows,
        title=f"ALFWorld-like games, {split} (seed {seed})",
    )
    console = Console()
    new = report.n_kept - report.reused
    if report.failed_slots:
        console.print(f"[yellow]no solvable game found for slots {report.failed_slots}")
    console.print(
        f"{report.n_kept} games in {report.out} ({report.reused} already there); "
        f"{new} new in {report.seconds:.0f} s = {report.games_per_minute:.1f} games/min "
        f"(CPU {report.cpu_seconds:.0f} s)"
    )
