"""`memp serve` (HTTP) and `memp mcp` (MCP tools): the memory as a service."""

from __future__ import annotations

import typer

from memp.cli.common import DB_OPT, database

app = typer.Typer()

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_MAX_BODY = 4 * 1024 * 1024
_SERVICE_EMB_OPT = typer.Option(None, "--embedder", help="Embedder spec (default: config, local).")


def _specs(db: str | None, embedder: str | None, llm: str | None) -> tuple[str, str, str]:
    """Store, embedder and LLM specs, resolved as every command resolves them
    (flag > environment > memp.toml > default), so workers can get them verbatim."""
    from memp.config import resolve

    return (
        database(db, must_exist=False),
        resolve("embedder", embedder).value,
        resolve("llm", llm).value,
    )


@app.command()
def serve(
    db: str = DB_OPT,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind; keep 127.0.0.1 unless behind a proxy."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    embedder: str = _SERVICE_EMB_OPT,
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
        _MAX_BODY, "--max-body", help="Largest accepted request body in bytes."
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

    db, embedder, llm = _specs(db, embedder, llm)
    if no_auth and host not in _LOOPBACK:
        raise typer.BadParameter(
            "--no-auth is only allowed on a loopback --host", param_hint="--no-auth"
        )
    if workers > 1:
        # Each worker builds its own app from the environment.
        os.environ.update(MEMP_DB=db, MEMP_EMBEDDER=embedder, MEMP_LLM=llm)
        if no_auth or max_body != _MAX_BODY:
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
    db: str = DB_OPT,
    transport: str = typer.Option(
        "stdio", "--transport", help="stdio | http (streamable HTTP at /mcp, API keys required)."
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8765, "--port"),
    namespace: str = typer.Option("default", "--namespace", "-n", help="Namespace for stdio."),
    embedder: str = _SERVICE_EMB_OPT,
    llm: str = typer.Option(
        None, "--llm", help="LLM spec, loaded on first use; 'none' to disable."
    ),
) -> None:
    """Serve the memory as MCP tools (retrieve_procedures, record_trajectory, report_outcome)."""
    from memp.errors import check_choice
    from memp.server.mcp import run

    check_choice("MCP transport", transport, ("stdio", "http"))
    db, embedder, llm = _specs(db, embedder, llm)
    run(
        db,
        transport=transport,  # type: ignore[arg-type]
        host=host,
        port=port,
        namespace=namespace,
        embedder=embedder,
        llm=llm,
    )
