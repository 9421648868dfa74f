"""What several command groups share: options, the database, ids and output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from memp.errors import MempError, NotFound

if TYPE_CHECKING:  # imported where used: `memp --help` stays fast
    from memp.memory import Memory

_DB_HELP = (
    "Store: SQLite path or postgresql:// URL (default: MEMP_DB, memp.toml, "
    "else ~/.local/share/memp/memp.db; `memp doctor` shows which)."
)
DB_OPT = typer.Option(None, "--db", help=_DB_HELP)
NS_OPT = typer.Option("default", "--namespace", "-n", help="Memory namespace.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON (for scripts).")
EMB_OPT = typer.Option(
    None, "--embedder", envvar="MEMP_EMBEDDER", help="Embedder spec (default: local)."
)


def database(db: str | None, *, must_exist: bool) -> str:
    """The database spec every command uses (:func:`memp.config.resolve`: flag >
    MEMP_DB > memp.toml > the user-level default).

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


def open_memory(
    db: str | None,
    namespace: str,
    embedder: str | None = None,
    llm: str | None = None,
    *,
    must_exist: bool = True,
) -> Memory:
    """A :class:`memp.Memory` on the resolved database; backends are built from specs."""
    from memp.memory import Memory

    spec = database(db, must_exist=must_exist)
    emb = None
    if embedder:
        from memp.embed import make_embedder

        emb = make_embedder(embedder)
    model = None
    if llm:
        from memp.llm import make_llm

        model = make_llm(llm)
    return Memory(spec, llm=model, embedder=emb, namespace=namespace)


def unique_id(kind: str, given: str, ids: list[str], where: str) -> str:
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


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


_FOLDED = {"task", "signals"}  # long free text: wrapped, not cut


def print_table(header: list[str], rows: list[list[str]], *, title: str | None = None) -> None:
    """A rich table; columns named ``task`` or ``signals`` fold, an ``id`` column never
    does (ids are printed whole, never "ab12…": they are what the other commands take)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, name in enumerate(header):
        if name == "id":
            width = max((len(row[i]) for row in rows), default=2)
            table.add_column(name, no_wrap=True, min_width=width)
        else:
            table.add_column(name, overflow="fold" if name in _FOLDED else "ellipsis")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
