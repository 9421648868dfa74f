"""The `memp` command: a thin layer over the Python API."""

from __future__ import annotations

import typer

app = typer.Typer(help="memp: lifelong procedural memory for LLM agents.", no_args_is_help=True)
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


# --- memory (engine) -------------------------------------------------------

# --- doctor (backends) ------------------------------------------------------

# --- environments: alfworld generate, collect -------------------------------

# --- service: serve, mcp, keys ----------------------------------------------

# --- experiments: run, runs, demo -------------------------------------------


if __name__ == "__main__":
    main()
