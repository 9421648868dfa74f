"""The one error handler of the `memp` command.

Every command runs inside :class:`HandledGroup`, the root group, so no command catches
errors itself: an error memp raises on purpose (or a file that cannot be read or written)
ends as one line ``error: ...`` on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

from memp.errors import MempError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # the shell's code for a Ctrl-C


class _Interrupted(Exception):
    def __init__(self, hint: str) -> None:
        super().__init__(hint)
        self.hint = hint


@contextmanager
def resumable(hint: str) -> Iterator[None]:
    """Ctrl-C inside the block ends as ``interrupted: <hint>`` (exit 130).

    For work that survives an interruption; elsewhere Ctrl-C stays click's ``Aborted!``.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise _Interrupted(hint) from None


def _describe(e: Exception) -> str:
    # A plain OSError's str() is "[Errno 2] No such file or directory: 'x'"; say it
    # plainly. memp's own errors (some are OSErrors too) already read well.
    if not isinstance(e, MempError) and isinstance(e, OSError) and e.strerror and e.filename:
        return f"{e.strerror}: {e.filename}"
    return str(e)


class HandledGroup(TyperGroup):
    """The root group: subcommands (and nested groups) are invoked from here."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (MempError, OSError) as e:
            typer.echo(f"error: {_describe(e)}", err=True)
            raise typer.Exit(EXIT_ERROR) from None
        except _Interrupted as e:
            typer.echo(f"interrupted: {e.hint}", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
