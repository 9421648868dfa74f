"""`memp memory ...`: inspect and edit procedural memory through :class:`memp.Memory`."""

from __future__ import annotations

from contextlib import closing, nullcontext
from typing import Any

import typer

from memp.cli.common import (
    DB_OPT,
    EMB_OPT,
    JSON_OPT,
    NS_OPT,
    database,
    open_memory,
    print_json,
    print_table,
    unique_id,
)

app = typer.Typer(help="Inspect and edit procedural memory.", no_args_is_help=True)

_PROCEDURE_ARG = typer.Argument(..., help="Procedure id, or a unique prefix of it.")
_VECTORS = {"embedding", "key_embedding", "fact_embeddings"}  # kept by `export`, not printed


def _by_id(db: str | None, namespace: str, given: str, method: str) -> Any:
    """``Memory.<method>(id)`` for the procedure ``given`` names (its id or a unique prefix)."""
    with open_memory(db, namespace) as mem:
        ids = [p.id for p in mem.list(status=None)]
        where = f"in namespace {namespace!r}; see `memp memory list`"
        return getattr(mem, method)(unique_id("procedure", given, ids, where))


def _record(p) -> dict[str, Any]:
    return p.model_dump(mode="json", exclude=_VECTORS)


def _usage_cell(p) -> str:
    u = p.usage
    return f"{u.retrieved}/{u.succeeded}/{u.failed}"


def _print_panel(body: str, title: str) -> None:
    from rich.console import Console
    from rich.panel import Panel

    Console().print(Panel(body, title=title))


@app.command("add")
def memory_add(
    path: str = typer.Argument(..., help="Trajectory file: JSON (object or list) or JSONL."),
    strategy: str = typer.Option(
        "proceduralization",
        "--strategy",
        "-s",
        help="trajectory | script | proceduralization | executable (needs --env).",
    ),
    env_name: str = typer.Option(
        None,
        "--env",
        help="executable: the environment the trajectories were played in "
        "(its action grammar; episodes are replay-verified).",
    ),
    split: str = typer.Option("train", "--split", help="executable: the env split played."),
    opts: list[str] = typer.Option(None, "--opt", help="executable: env option key=value."),
    only_success: bool = typer.Option(
        False, "--only-success", help="Skip trajectories that did not succeed."
    ),
    llm: str = typer.Option(
        None, "--llm", help="LLM spec for script abstraction (default: local)."
    ),
    db: str = DB_OPT,
    namespace: str = NS_OPT,
    embedder: str = EMB_OPT,
) -> None:
    """Build procedures from trajectories and store them."""
    from rich.progress import Progress

    from memp.build import BUILD_STRATEGIES, builds, read_trajectories
    from memp.errors import InvalidInput, check_choice

    check_choice("build strategy", strategy, BUILD_STRATEGIES)
    trajectories = list(read_trajectories(path))
    env = None
    if strategy == "executable":
        if not env_name:
            raise InvalidInput(
                "--strategy executable compiles programs in an environment's action grammar: "
                "pass --env NAME (and --split / --opt key=value as the episodes were played)"
            )
        from memp.agents.base import parse_env_options
        from memp.envs import make_env

        env = make_env(env_name, split=split, **parse_env_options(opts))
    with (
        closing(env) if env is not None else nullcontext(),
        open_memory(db, namespace, embedder, llm, must_exist=False) as mem,
        Progress(transient=True) as bar,
    ):
        task = bar.add_task("building", total=len(trajectories))
        added = 0
        for t in trajectories:
            # failed trajectories are never built here (memp.build.builds)
            if (t.success or not only_success) and builds(t):
                mem.add(t, strategy=strategy, env=env)
                added += 1
            bar.advance(task)
    typer.echo(
        f"added {added} procedure(s) from {len(trajectories)} trajectory(ies) "
        f"to namespace {namespace!r} of {database(db, must_exist=False)}"
    )


@app.command("list")
def memory_list(
    environment: str = typer.Option(None, "--env", help="Only this environment."),
    status: str = typer.Option("active", "--status", help="active | retired | all."),
    limit: int = typer.Option(50, "--limit"),
    offset: int = typer.Option(0, "--offset"),
    as_json: bool = JSON_OPT,
    db: str = DB_OPT,
    namespace: str = NS_OPT,
) -> None:
    """List stored procedures."""
    from memp.errors import check_choice
    from memp.types import ProcedureStatus

    check_choice("status", status, ("active", "retired", "all"))
    st = None if status == "all" else ProcedureStatus(status)
    with open_memory(db, namespace) as mem:
        procs = mem.list(environment=environment, status=st, limit=limit, offset=offset)
    if as_json:
        print_json([_record(p) for p in procs])
        return
    print_table(
        ["id", "env", "build", "v", "status", "ret/ok/fail", "task"],
        [
            [p.id, p.environment, p.build, str(p.version), p.status.value, _usage_cell(p), p.task]
            for p in procs
        ],
    )


@app.command("show")
def memory_show(
    procedure_id: str = _PROCEDURE_ARG,
    as_json: bool = typer.Option(
        False, "--json", help="The full record as JSON (without vectors)."
    ),
    db: str = DB_OPT,
    namespace: str = NS_OPT,
) -> None:
    """Show one procedure."""
    p = _by_id(db, namespace, procedure_id, "get")
    if as_json:
        print_json(_record(p))
        return
    head = (
        f"task: {p.task}\ntask key: {p.task_key}\nenvironment: {p.environment}   build: {p.build}   "
        f"version: {p.version}   status: {p.status.value}\nusage (retrieved/succeeded/failed): "
        f"{_usage_cell(p)}\nfacts: {', '.join(p.facts)}\nsource model: {p.source_model}   "
        f"updated: {p.updated_at:%Y-%m-%d %H:%M:%S}"
    )
    _print_panel(head + "\n\n" + p.text(), p.id)


@app.command("history")
def memory_history(
    procedure_id: str = _PROCEDURE_ARG,
    as_json: bool = JSON_OPT,
    db: str = DB_OPT,
    namespace: str = NS_OPT,
) -> None:
    """Every version of a procedure, oldest first."""
    versions = _by_id(db, namespace, procedure_id, "history")
    if as_json:
        print_json([_record(v) for v in versions])
        return
    for v in versions:
        why = v.metadata.get("change_reason") or "created"
        _print_panel(
            v.text() or "(empty)", f"v{v.version}  {v.updated_at:%Y-%m-%d %H:%M:%S}  {why}"
        )


@app.command("search")
def memory_search(
    task: str = typer.Argument(..., help="The new task to find procedures for."),
    strategy: str = typer.Option(
        "query", "--strategy", "-s", help="random | query | avefact | hybrid."
    ),
    k: int = typer.Option(3, "--k", "-k", help="How many procedures at most."),
    min_score: float = typer.Option(0.0, "--min-score"),
    budget: int = typer.Option(None, "--budget", help="Token budget of the rendered block."),
    environment: str = typer.Option(None, "--env"),
    task_key: str = typer.Option(None, "--task-key", help="Abstracted task template."),
    render: bool = typer.Option(
        False, "--render", help="Print the prompt block instead of a table."
    ),
    as_json: bool = JSON_OPT,
    db: str = DB_OPT,
    namespace: str = NS_OPT,
    embedder: str = EMB_OPT,
) -> None:
    """Retrieve procedures for a task (does not count as a use)."""
    with open_memory(db, namespace, embedder) as mem:
        hits = mem.retrieve(
            task,
            strategy=strategy,
            k=k,
            min_score=min_score,
            budget_tokens=budget,
            environment=environment,
            task_key=task_key,
            track=False,
        )
        block = mem.render(hits)
    if render:
        typer.echo(block)
    elif as_json:
        print_json(
            [
                {"score": h.score, "signals": h.signals, "procedure": _record(h.procedure)}
                for h in hits
            ]
        )
    else:
        print_table(
            ["score", "id", "task", "signals"],
            [[f"{h.score:.4f}", h.procedure.id, h.procedure.task, str(h.signals)] for h in hits],
        )


@app.command("retire")
def memory_retire(
    procedure_id: str = _PROCEDURE_ARG,
    db: str = DB_OPT,
    namespace: str = NS_OPT,
) -> None:
    """Retire a procedure: never retrieved again, still inspectable."""
    p = _by_id(db, namespace, procedure_id, "retire")
    typer.echo(f"retired {p.id}")


@app.command("export")
def memory_export(
    path: str = typer.Argument(..., help="Output JSONL file."),
    db: str = DB_OPT,
    namespace: str = NS_OPT,
) -> None:
    """Export one namespace's procedures (with versions and vectors) and trajectories as JSONL."""
    with open_memory(db, namespace) as mem:
        n = mem.export_jsonl(path)
    typer.echo(f"exported {n} record(s) of namespace {namespace!r} to {path}")


@app.command("import")
def memory_import(
    path: str = typer.Argument(..., help="JSONL file written by `memp memory export`."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite procedures with the same id."),
    db: str = DB_OPT,
    namespace: str = NS_OPT,
) -> None:
    """Import a JSONL export into a namespace (records of another namespace are refused)."""
    with open_memory(db, namespace, must_exist=False) as mem:
        n = mem.import_jsonl(path, replace=replace)
    typer.echo(
        f"imported {n} record(s) into namespace {namespace!r} of {database(db, must_exist=False)}"
    )


@app.command("stats")
def memory_stats(as_json: bool = JSON_OPT, db: str = DB_OPT, namespace: str = NS_OPT) -> None:
    """Counts of one namespace (procedures by status, trajectories) and of the store."""
    from memp.types import ProcedureStatus

    with open_memory(db, namespace) as mem:
        store = mem.stats()
        stats: dict[str, Any] = {
            "namespace": namespace,
            "procedures": {s.value: mem.count(status=s) for s in ProcedureStatus},
            "trajectories": len(mem.list_trajectories()),
        }
    # Store-wide facts (every namespace) under their own names.
    for key in ("path", "url", "schema_version", "dim", "namespaces"):
        if key in store:
            stats[f"store {key}"] = store[key]
    if as_json:
        print_json(stats)
    else:
        print_table(["stat", "value"], [[key, str(value)] for key, value in stats.items()])
