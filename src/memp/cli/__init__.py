"""The `memp` command: a thin layer over the Python API.

One module per command group; what they share is in :mod:`memp.cli.common` (options,
the database every command resolves the same way, ids, output) and every error goes
through the one handler in :mod:`memp.cli.errors`.
"""

from __future__ import annotations

import typer

from memp.cli import doctor, envs, experiments, keys, memory, service, skill
from memp.cli.errors import HandledGroup

__all__ = ["app", "main"]

app = typer.Typer(
    cls=HandledGroup, help="memp: lifelong procedural memory for LLM agents.", no_args_is_help=True
)
# Unnamed groups add their commands at the top level; the order is the order of `memp --help`.
app.add_typer(doctor.app)
app.add_typer(envs.app)
app.add_typer(service.app)
app.add_typer(experiments.app)
app.add_typer(memory.app, name="memory")
app.add_typer(skill.app, name="skill")
app.add_typer(keys.app, name="keys")
app.add_typer(experiments.runs, name="runs")
app.add_typer(envs.alfworld, name="alfworld")


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
