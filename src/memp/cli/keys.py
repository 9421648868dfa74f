"""`memp keys ...`: API keys of the memory service, kept in the memory database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from memp.cli.common import DB_OPT, database, print_table, unique_id

app = typer.Typer(help="API keys of the memory service.", no_args_is_help=True)


@contextmanager
def _key_store(db: str | None, *, must_exist: bool) -> Iterator:
    from memp.store.keys import open_keys

    keys, store = open_keys(database(db, must_exist=must_exist))
    try:
        yield keys
    finally:
        keys.close()
        if store is not None:  # the PostgreSQL store opened for the keys
            store.close()


@app.command("create")
def keys_create(
    namespace: str = typer.Argument(..., help="Namespace the key reads and writes."),
    name: str = typer.Option("", "--name", help="A label (who or what uses the key)."),
    db: str = DB_OPT,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    with _key_store(db, must_exist=False) as keys:
        key, token = keys.create(namespace, name=name)
    typer.echo(
        f"created key {key.id} for namespace {key.namespace!r} (shown once, keep it secret):",
        err=True,
    )
    typer.echo(token)


@app.command("list")
def keys_list(
    namespace: str = typer.Option(None, "--namespace", "-n", help="Only this namespace."),
    db: str = DB_OPT,
) -> None:
    """List API keys (ids, namespaces, state; never secrets)."""
    with _key_store(db, must_exist=True) as keys:
        rows = keys.list(namespace=namespace)
    print_table(
        ["id", "namespace", "name", "created", "state"],
        [
            [
                k.id,
                k.namespace,
                k.name,
                f"{k.created_at:%Y-%m-%d %H:%M}",
                "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}",
            ]
            for k in rows
        ],
    )


@app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="Key id (from `memp keys list`), or a unique prefix."),
    db: str = DB_OPT,
) -> None:
    """Revoke an API key: it stops working at once."""
    with _key_store(db, must_exist=True) as keys:
        ids = [k.id for k in keys.list()]
        key = keys.revoke(unique_id("API key", key_id, ids, "; see `memp keys list`"))
    typer.echo(f"revoked key {key.id} (namespace {key.namespace!r})")
