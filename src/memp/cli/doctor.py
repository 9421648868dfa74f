"""`memp doctor`: which backends are configured, and whether each one really works."""

from __future__ import annotations

import typer

from memp.cli.common import DB_OPT

app = typer.Typer()


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
    db: str = DB_OPT,
    quick: bool = typer.Option(
        False, "--quick", help="Check installation only; do not load models."
    ),
) -> None:
    """Show the configured backends and check that each one really works."""
    from memp.doctor import run_doctor

    if not run_doctor(llm, embedder, db, quick=quick):
        raise typer.Exit(1)  # a backend that does not work is a finding, not a usage error
