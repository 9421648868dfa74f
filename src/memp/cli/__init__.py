"""The `memp` command: a thin layer over the Python API.

Every command gets its database from one place (:func:`memp.config.resolve`: flag >
MEMP_DB > memp.toml > the user-level default) and every memp error ends as one line
on stderr with exit code 2 (:class:`_Group`), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from memp.errors import MempError, NotFound


class _Group(TyperGroup):
    """The one error handler of the CLI: errors memp raises on purpose (and files that
    cannot be read or written) become ``error: ...`` and exit code 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MempError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except OSError as e:
            what = f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)
            typer.echo(f"error: {what}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Group, help="memp: lifelong procedural memory for LLM agents.", no_args_is_help=True
)
memory_app = typer.Typer(help="Inspect and edit procedural memory.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of the memory service.", no_args_is_help=True)
runs_app = typer.Typer(help="Experiment runs.", no_args_is_help=True)
alfworld_app = typer.Typer(help="ALFWorld(-like) game data.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
app.add_typer(keys_app, name="keys")
app.add_typer(runs_app, name="runs")
app.add_typer(alfworld_app, name="alfworld")


def main() -> None:
    app()


def _version(value: bool) -> None:
    if value:
        import memp

        typer.echo(f"memp {memp.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """memp: lifelong procedural memory for LLM agents."""


# --- shared options and the database ------------------------------------------

_DB_HELP = (
    "Store: SQLite path or postgresql:// URL (default: MEMP_DB, memp.toml, "
    "else ~/.local/share/memp/memp.db; `memp doctor` shows which)."
)
_DB_OPT = typer.Option(None, "--db", help=_DB_HELP)
_NS_OPT = typer.Option("default", "--namespace", "-n", help="Memory namespace.")
_JSON_OPT = typer.Option(False, "--json", help="Print JSON (for scripts).")
_EMB_OPT = typer.Option(
    None, "--embedder", envvar="MEMP_EMBEDDER", help="Embedder spec (default: local)."
)
_VECTORS = {"embedding", "key_embedding", "fact_embeddings"}


def _db(db: str | None, *, must_exist: bool) -> str:
    """The database spec every command uses; reading commands need the file to exist.

    A missing file is an error for readers (a mistyped path must not look like an empty
    memory); writers create it, and the parent folder of the default location.
    """
    from memp.config import resolve, sqlite_path

    setting = resolve("db", db)
    path = sqlite_path(setting.value)
    if path is None:  # a database server: nothing to check here
        return setting.value
    if must_exist and not path.is_file():
        hint = ""
        if setting.source == "default" and Path("memp.db").is_file():
            hint = "; ./memp.db is no longer the default: pass --db memp.db or set db in memp.toml"
        source = "--db" if setting.source == "cli" else setting.source
        raise MempError(
            f"no memory database at {path.absolute()} (from {source}): check the path "
            f"(`memp doctor` shows how it is chosen); `memp memory add` creates one{hint}"
        )
    if setting.source == "default":
        path.parent.mkdir(parents=True, exist_ok=True)
    return setting.value


def _memory(
    db: str | None,
    namespace: str,
    embedder: str | None = None,
    llm: str | None = None,
    *,
    must_exist: bool = True,
):
    from memp.memory import Memory

    spec = _db(db, must_exist=must_exist)
    emb = None
    if embedder:
        from memp.embed import make_embedder

        emb = make_embedder(embedder)
    model = None
    if llm:
        from memp.llm import make_llm

        model = make_llm(llm)
    return Memory(spec, llm=model, embedder=emb, namespace=namespace)


def _unique(kind: str, given: str, ids: list[str], where: str) -> str:
    """The one id starting with ``given`` (ids are long: a prefix is enough to type)."""
    if given in ids:
        return given
    matches = [i for i in ids if i.startswith(given)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"no {kind} {given!r} {where}")
    shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise MempError(
        f"{kind} id prefix {given!r} is ambiguous: {len(matches)} match ({shown}); "
        "give more characters"
    )


def _procedure_id(mem, given: str) -> str:
    ids = [p.id for p in mem.list(status=None)]
    return _unique(
        "procedure", given, ids, f"in namespace {mem.namespace!r}; see `memp memory list`"
    )


def _record(p) -> dict[str, Any]:
    return p.model_dump(mode="json", exclude=_VECTORS)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _usage_cell(p) -> str:
    u = p.usage
    return f"{u.retrieved}/{u.succeeded}/{u.failed}"


def _id_column(table, ids: list[str]) -> None:
    # Ids are printed whole (never "ab12…"): they are what the other commands take.
    table.add_column("id", no_wrap=True, min_width=max((len(i) for i in ids), default=2))


# --- memory (engine) -------------------------------------------------------


@memory_app.command("add")
def memory_add(
    path: str = typer.Argument(..., help="Trajectory file: JSON (object or list) or JSONL."),
    strategy: str = typer.Option(
        "proceduralization", "--strategy", "-s", help="trajectory | script | proceduralization."
    ),
    only_success: bool = typer.Option(
        False, "--only-success", help="Skip trajectories that did not succeed."
    ),
    llm: str = typer.Option(
        None, "--llm", help="LLM spec for script abstraction (default: local)."
    ),
    db: str = _DB_OPT,
    namespace: str = _NS_OPT,
    embedder: str = _EMB_OPT,
) -> None:
    """Build procedures from trajectories and store them."""
    from rich.progress import Progress

    from memp.build import BUILD_STRATEGIES, builds, read_trajectories
    from memp.errors import check_choice

    check_choice("build strategy", strategy, BUILD_STRATEGIES)
    trajectories = list(read_trajectories(path))
    with (
        _memory(db, namespace, embedder, llm, must_exist=False) as mem,
        Progress(transient=True) as bar,
    ):
        task = bar.add_task("building", total=len(trajectories))
        added = 0
        for t in trajectories:
            # failed trajectories are never built here (memp.build.builds)
            if (t.success or not only_success) and builds(t):
                mem.add(t, strategy=strategy)
                added += 1
            bar.advance(task)
    typer.echo(
        f"added {added} procedure(s) from {len(trajectories)} trajectory(ies) "
        f"to namespace {namespace!r} of {_db(db, must_exist=False)}"
    )


@memory_app.command("list")
def memory_list(
    environment: str = typer.Option(None, "--env", help="Only this environment."),
    status: str = typer.Option("active", "--status", help="active | retired | all."),
    limit: int = typer.Option(50, "--limit"),
    offset: int = typer.Option(0, "--offset"),
    as_json: bool = _JSON_OPT,
    db: str = _DB_OPT,
    namespace: str = _NS_OPT,
) -> None:
    """List stored procedures."""
    from rich.console import Console
    from rich.table import Table

    from memp.errors import check_choice
    from memp.types import ProcedureStatus

    check_choice("status", status, ("active", "retired", "all"))
    st = None if status == "all" else ProcedureStatus(status)
    with _memory(db, namespace) as mem:
        procs = mem.list(environment=environment, status=st, limit=limit, offset=offset)
    if as_json:
        _print_json([_record(p) for p in procs])
        return
    table = Table()
    _id_column(table, [p.id for p in procs])
    for col in ("env", "build", "v", "status", "ret/ok/fail"):
        table.add_column(col)
    table.add_column("task", overflow="fold")
    for p in procs:
        table.add_row(
            p.id, p.environment, p.build, str(p.version), p.status.value, _usage_cell(p), p.task
        )
    Console().print(table)


@memory_app.command("show")
def memory_show(
    procedure_id: str = typer.Argument(..., help="Procedure id, or a unique prefix of it."),
    as_json: bool = typer.Option(
        False, "--json", help="The full record as JSON (without vectors)."
    ),
    db: str = _DB_OPT,
    namespace: str = _NS_OPT,
) -> None:
    """Show one procedure."""
    from rich.console import Console
    from rich.panel import Panel

    with _memory(db, namespace) as mem:
        p = mem.get(_procedure_id(mem, procedure_id))
    if as_json:
        _print_json(_record(p))
        return
    head = (
        f"task: {p.task}\ntask key: {p.task_key}\nenvironment: {p.environment}   build: {p.build}   "
        f"version: {p.version}   status: {p.status.value}\nusage (retrieved/succeeded/failed): "
        f"{_usage_cell(p)}\nfacts: {', '.join(p.facts)}\nsource model: {p.source_model}   "
        f"updated: {p.updated_at:%Y-%m-%d %H:%M:%S}"
    )
    Console().print(Panel(head + "\n\n" + p.text(), title=p.id))


@memory_app.command("history")
def memory_history(
    procedure_id: str = typer.Argument(..., help="Procedure id, or a unique prefix of it."),
    as_json: bool = _JSON_OPT,
    db: str = _DB_OPT,
    namespace: str = _NS_OPT,
) -> None:
    """Every version of a procedure, oldest first."""
    from rich.console import Console
    from rich.panel import Panel

    with _memory(db, namespace) as mem:
        versions = mem.history(_procedure_id(mem, procedure_id))
    if as_json:
        _print_json([_record(v) for v in versions])
        return
    con = Console()
    for v in versions:
        why = v.metadata.get("change_reason") or "created"
        con.print(
            Panel(
                v.text() or "(empty)",
                title=f"v{v.version}  {v.updated_at:%Y-%m-%d %H:%M:%S}  {why}",
            )
        )


@memory_app.command("search")
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
    as_json: bool = _JSON_OPT,
    db: str = _DB_OPT,
    namespace: str = _NS_OPT,
    embedder: str = _EMB_OPT,
) -> None:
    """Retrieve procedures for a task (does not count as a use)."""
    from rich.console import Console
    from rich.table import Table

    with _memory(db, namespace, embedder) as mem:
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
        return
    if as_json:
        _print_json(
            [
                {"score": h.score, "signals": h.signals, "procedure": _record(h.procedure)}
                for h in hits
            ]
        )
        return
    table = Table("score")
    _id_column(table, [h.procedure.id for h in hits])
    table.add_column("task", overflow="fold")
    table.add_column("signals", overflow="fold")
    for h in hits:
        table.add_row(f"{h.score:.4f}", h.procedure.id, h.procedure.task, str(h.signals))
    Console().print(table)


@memory_app.command("retire")
def memory_retire(
    procedure_id: str = typer.Argument(..., help="Procedure id, or a unique prefix of it."),
    db: str = _DB_OPT,
    namespace: str = _NS_OPT,
) -> None:
    """Retire a procedure: never retrieved again, still inspectable."""
    with _memory(db, namespace) as mem:
        p = mem.retire(_procedure_id(mem, procedure_id))
    typer.echo(f"retired {p.id}")


@memory_app.command("export")
def memory_export(
    path: str = typer.Argument(..., help="Output JSONL file."),
    db: str = _DB_OPT,
    namespace: str = _NS_OPT,
) -> None:
    """Export one namespace's procedures (with versions and vectors) and trajectories as JSONL."""
    with _memory(db, namespace) as mem:
        n = mem.export_jsonl(path)
    typer.echo(f"exported {n} record(s) of namespace {namespace!r} to {path}")


@memory_app.command("import")
def memory_import(
    path: str = typer.Argument(..., help="JSONL file written by `memp memory export`."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite procedures with the same id."),
    db: str = _DB_OPT,
    namespace: str = _NS_OPT,
) -> None:
    """Import a JSONL export into a namespace (records of another namespace are refused)."""
    with _memory(db, namespace, must_exist=False) as mem:
        n = mem.import_jsonl(path, replace=replace)
    typer.echo(
        f"imported {n} record(s) into namespace {namespace!r} of {_db(db, must_exist=False)}"
    )


@memory_app.command("stats")
def memory_stats(as_json: bool = _JSON_OPT, db: str = _DB_OPT, namespace: str = _NS_OPT) -> None:
    """Counts of one namespace (procedures by status, trajectories) and of the store."""
    from rich.console import Console
    from rich.table import Table

    from memp.types import ProcedureStatus

    with _memory(db, namespace) as mem:
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
        _print_json(stats)
        return
    table = Table("stat", "value")
    for key, value in stats.items():
        table.add_row(key, str(value))
    Console().print(table)


# --- doctor (backends) ------------------------------------------------------


@app.command()
def doctor(
    llm: str = typer.Option(
        None,
        "--llm",
        help="LLM spec: local | local:fast | <path>.gguf | openai:<m> | ollama:<m> | anthropic:<m> | http://host:port/v1#<m>",
    ),
    embedder: str = typer.Option(
        None,
        "--embedder",
        help="Embedder spec: local | hash | openai:<m> | http://host:port/v1#<m>",
    ),
    db: str = _DB_OPT,
    quick: bool = typer.Option(
        False, "--quick", help="Check installation only; do not load models."
    ),
) -> None:
    """Show the configured backends and check that each one really works."""
    from memp.doctor import run_doctor

    if not run_doctor(llm, embedder, db, quick=quick):
        raise typer.Exit(1)


# --- environments: alfworld generate, collect -------------------------------


# alfworld generate -----------------------------------------------------------


@alfworld_app.command("generate")
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
    from rich.table import Table

    from memp.envs.alfworld_gen import TASK_TYPES, generate

    n = old_n or games
    report = generate(split, n, seed, out, task_types=task_type or None, workers=workers)
    table = Table(title=f"ALFWorld-like games, {split} (seed {seed})")
    for col in ("task type", "kept", "checked", "solvable"):
        table.add_column(col)
    for t in TASK_TYPES:
        if report.attempts[t] or report.kept[t]:
            frac = report.solvable_fraction(t)
            shown = "-" if frac != frac else f"{frac:.0%}"
            table.add_row(t, str(report.kept[t]), str(report.attempts[t]), shown)
    console = Console()
    console.print(table)
    new = report.n_kept - report.reused
    if report.failed_slots:
        console.print(f"[yellow]no solvable game found for slots {report.failed_slots}")
    console.print(
        f"{report.n_kept} games in {report.out} ({report.reused} already there); "
        f"{new} new in {report.seconds:.0f} s = {report.games_per_minute:.1f} games/min "
        f"(CPU {report.cpu_seconds:.0f} s)"
    )


# collect (agent harness) -----------------------------------------------------


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
    db: str | None = _DB_OPT,
    namespace: str = _NS_OPT,
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
        None, "--data", "--data-dir", help="ALFWorld games: an unpacked official folder, a split archive (valid_seen.tar.xz) or a folder of archives (default $ALFWORLD_DATA)."
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
    from memp.memory import Memory
    from memp.policies import ExpertPolicy, collect, parse_env_options

    check_choice("policy", policy, ("expert", "llm"))
    options = parse_env_options(opt)
    if data_dir:
        options["data_dir"] = data_dir
    if tp_db:
        options["db_dir"] = tp_db
    if tp_queries:
        options["queries"] = tp_queries
    environment = make_env(env, split, **options)
    total = len(environment)
    if start >= total:
        raise MempError(f"--start {start} is past the end of the split ({total} episodes)")
    n = old_n or n_episodes
    episodes = list(range(start, min(start + n, total)))
    emb = None
    if embedder:
        from memp.embed import make_embedder

        emb = make_embedder(embedder)
    db = _db(db, must_exist=False)
    memory = Memory(db, embedder=emb, namespace=namespace)
    if policy == "expert":
        runner: object = ExpertPolicy()
    else:
        from memp.agent import ReActAgent
        from memp.llm import make_llm

        runner = ReActAgent(
            make_llm(llm), memory=memory if use_memory else None, max_steps=max_steps
        )

    wins = 0
    steps = 0
    sink = open(out, "a", encoding="utf-8") if out else None  # noqa: SIM115 - closed below
    try:
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("won {task.fields[wins]}"), TimeElapsedColumn(),
        ) as bar:  # fmt: skip
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
    finally:
        if sink is not None:
            sink.close()
        environment.close()
        memory.close()
    k = len(episodes)
    Console().print(
        f"stored {k} trajectories in {db} (namespace {namespace}): won {wins}/{k}, "
        f"mean steps {steps / max(k, 1):.1f}"
    )


# --- service: serve, mcp, keys ----------------------------------------------


def _service_specs(db: str | None, embedder: str | None, llm: str | None) -> tuple[str, str, str]:
    from memp.config import resolve

    return (
        _db(db, must_exist=False),
        resolve("embedder", embedder).value,
        resolve("llm", llm).value,
    )


@app.command()
def serve(
    db: str = _DB_OPT,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind; keep 127.0.0.1 unless behind a proxy."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    embedder: str = typer.Option(
        None, "--embedder", help="Embedder spec (default: config, local)."
    ),
    llm: str = typer.Option(
        None,
        "--llm",
        help="LLM spec for script building/adjustment, loaded on first use; 'none' to disable.",
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="No API keys: every request uses --namespace (localhost only)."
    ),
    namespace: str = typer.Option(
        "default", "--namespace", "-n", help="Namespace used with --no-auth."
    ),
    max_body: int = typer.Option(
        4 * 1024 * 1024, "--max-body", help="Largest accepted request body in bytes."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        help="uvicorn worker processes (PostgreSQL or SQLite WAL both allow several).",
    ),
) -> None:
    """Serve the memory over HTTP (OpenAPI docs at /docs)."""
    import os

    import uvicorn

    db, embedder, llm = _service_specs(db, embedder, llm)
    if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter(
            "--no-auth is only allowed on a loopback --host", param_hint="--no-auth"
        )
    if workers > 1:
        # Each worker builds its own app from the environment.
        os.environ.update(MEMP_DB=db, MEMP_EMBEDDER=embedder, MEMP_LLM=llm)
        if no_auth or max_body != 4 * 1024 * 1024:
            raise typer.BadParameter("--workers > 1 supports neither --no-auth nor --max-body")
        uvicorn.run(
            "memp.server.http:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
        return
    from memp.server.http import create_app

    app_ = create_app(
        db, embedder=embedder, llm=llm, auth=not no_auth, namespace=namespace, max_body=max_body
    )
    typer.echo(f"memp serving {db} on http://{host}:{port} (docs: /docs)", err=True)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command("mcp")
def mcp_cmd(
    db: str = _DB_OPT,
    transport: str = typer.Option(
        "stdio", "--transport", help="stdio | http (streamable HTTP at /mcp, API keys required)."
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8765, "--port"),
    namespace: str = typer.Option("default", "--namespace", "-n", help="Namespace for stdio."),
    embedder: str = typer.Option(
        None, "--embedder", help="Embedder spec (default: config, local)."
    ),
    llm: str = typer.Option(
        None, "--llm", help="LLM spec, loaded on first use; 'none' to disable."
    ),
) -> None:
    """Serve the memory as MCP tools (retrieve_procedures, record_trajectory, report_outcome)."""
    from memp.errors import check_choice
    from memp.server.mcp import run

    check_choice("MCP transport", transport, ("stdio", "http"))
    db, embedder, llm = _service_specs(db, embedder, llm)
    run(
        db,
        transport=transport,
        host=host,
        port=port,
        namespace=namespace,
        embedder=embedder,
        llm=llm,
    )  # type: ignore[arg-type]


@keys_app.command("create")
def keys_create(
    namespace: str = typer.Argument(..., help="Namespace the key reads and writes."),
    name: str = typer.Option("", "--name", help="A label (who or what uses the key)."),
    db: str = _DB_OPT,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from memp.store.keys import open_keys

    keys, store = open_keys(_db(db, must_exist=False))
    try:
        key, token = keys.create(namespace, name=name)
    finally:
        keys.close()
        if store is not None:
            store.close()
    typer.echo(
        f"created key {key.id} for namespace {key.namespace!r} (shown once, keep it secret):",
        err=True,
    )
    typer.echo(token)


@keys_app.command("list")
def keys_list(
    namespace: str = typer.Option(None, "--namespace", "-n", help="Only this namespace."),
    db: str = _DB_OPT,
) -> None:
    """List API keys (ids, namespaces, state; never secrets)."""
    from rich.console import Console
    from rich.table import Table

    from memp.store.keys import open_keys

    keys, store = open_keys(_db(db, must_exist=True))
    try:
        rows = keys.list(namespace=namespace)
    finally:
        keys.close()
        if store is not None:
            store.close()
    table = Table()
    _id_column(table, [k.id for k in rows])
    for col in ("namespace", "name", "created", "state"):
        table.add_column(col)
    for k in rows:
        state = "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(k.id, k.namespace, k.name, f"{k.created_at:%Y-%m-%d %H:%M}", state)
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="Key id (from `memp keys list`), or a unique prefix."),
    db: str = _DB_OPT,
) -> None:
    """Revoke an API key: it stops working at once."""
    from memp.store.keys import open_keys

    keys, store = open_keys(_db(db, must_exist=True))
    try:
        ids = [k.id for k in keys.list()]
        key = keys.revoke(_unique("API key", key_id, ids, "; see `memp keys list`"))
    finally:
        keys.close()
        if store is not None:
            store.close()
    typer.echo(f"revoked key {key.id} (namespace {key.namespace!r})")


# --- experiments: run, runs, demo -------------------------------------------


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
    from memp.experiment.config import apply_overrides, load_raw, parse_config
    from memp.experiment.report import print_summary
    from memp.experiment.runner import run_experiment

    try:
        data = load_raw(experiment)
        sets = list(set_)
        if model:
            sets.append(f"models={[model]!r}")
        if mode:
            sets.append(f"conditions.*.mode={mode!r}")
        if episodes is not None:
            sets.append(f"env.*.eval_episodes={episodes}")
        if train_episodes is not None:
            sets.append(f"env.*.train_episodes={train_episodes}")
        data = apply_overrides(data, sets)
        if only:
            keep = {c.strip() for c in only.split(",") if c.strip()}
            names = [c.get("name") for c in data.get("conditions", [])]
            missing = keep - set(names)
            if missing:
                raise typer.BadParameter(f"unknown conditions {sorted(missing)}; have {names}")
            data["conditions"] = [c for c in data["conditions"] if c.get("name") in keep]
        if mode:
            # Executable mode only applies to conditions that have a memory.
            for c in data.get("conditions", []):
                if c.get("memory", "none") == "none" and c.get("update", "none") == "none":
                    c["mode"] = "prompt"
        cfg = parse_config(data, origin=experiment)
        summary = run_experiment(
            cfg,
            out or f"runs/{cfg.name}",
            executor=executor,
            workers=workers,
            address=address,
            fresh=fresh,
            progress=progress,
            reuse=list(reuse) or None,
        )
    except KeyboardInterrupt:
        typer.echo(
            "interrupted: finished episodes are saved; re-run the same command to resume", err=True
        )
        raise typer.Exit(130) from None
    print_summary(summary)
    typer.echo(f"report: {(out or f'runs/{cfg.name}')}/report.html (+ report.md, report.json)")


@runs_app.command("list")
def runs_list(
    root: str = typer.Option("runs", "--root", help="Folder holding run directories."),
) -> None:
    """List the runs under a folder."""
    from memp.experiment.runs import print_runs

    print_runs(root)


@runs_app.command("show")
def runs_show(
    run: str = typer.Argument(..., help="Run directory or name under runs/."),
    episode: int = typer.Option(None, "--episode", help="Episode # (or index with --condition)."),
    condition: str = typer.Option(
        None, "--condition", help="Condition whose episode index to show."
    ),
    env: str = typer.Option(None, "--env", help="Environment, when several have that episode."),
    root: str = typer.Option("runs", "--root"),
) -> None:
    """Show a run's results, or one episode's full trajectory with --episode."""
    from memp.experiment.runs import print_episode, print_run, resolve_run

    path = resolve_run(run, root)
    if episode is None:
        print_run(path)
    else:
        print_episode(path, episode, condition=condition, env=env)


@runs_app.command("report")
def runs_report(
    run: str = typer.Argument(..., help="Run directory or name under runs/."),
    root: str = typer.Option("runs", "--root"),
) -> None:
    """Regenerate a run's report files from its database."""
    from memp.experiment.report import print_summary, write_report
    from memp.experiment.rundb import RunDB
    from memp.experiment.runs import resolve_run

    path = resolve_run(run, root)
    with RunDB.open_existing(path) as db:
        summary = write_report(db, path)
    print_summary(summary)
    typer.echo(f"report: {path}/report.html (+ report.md, report.json)")


@app.command("demo")
def demo_cmd(
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
    from memp.experiment.report import print_summary

    summary = run_demo(
        out=out,
        games=games,
        train=train,
        model=model,
        executor=executor,
        workers=workers,
        fresh=fresh,
    )
    print_summary(summary)
    typer.echo(f"report: {out}/report.html (+ report.md, report.json)")


if __name__ == "__main__":
    main()
