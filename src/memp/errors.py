"""Errors memp raises: each says what was wrong and what to do about it."""

from __future__ import annotations

import re
from collections.abc import Iterable


class MempError(Exception):
    """Base class of every error memp raises on purpose."""


class InvalidInput(MempError, ValueError):
    """Input that cannot be used as given (malformed record, bad option value)."""


class UnknownOption(InvalidInput):
    """A strategy / backend / option name memp does not know."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid choices: {', '.join(self.valid)}")


def check_choice(kind: str, name: str, valid: Iterable[str]) -> str:
    valid = list(valid)
    if name not in valid:
        raise UnknownOption(kind, name, valid)
    return name


class NotFound(MempError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class StoreError(MempError):
    """The store cannot be used (newer schema, dimension mismatch, corrupt file...)."""


class DimensionMismatch(StoreError):
    pass


class EmbedderMismatch(DimensionMismatch):
    """The store's vectors were made by another embedder (even one of the same dimension)."""


class BackendError(MempError):
    """An LLM / embedder backend cannot be reached or answered with an error."""


class MissingDependency(MempError, ImportError):
    def __init__(self, package: str, extra: str | None = None, why: str = "") -> None:
        how = f"pip install 'memp[{extra}]'" if extra else f"pip install {package}"
        msg = f"{package} is not installed{': ' + why if why else ''}; install it with: {how}"
        super().__init__(msg)


class MissingData(MempError, FileNotFoundError):
    """Data a user must supply (ALFWorld games, TravelPlanner database...) is absent."""


# A file path of two or more parts (not a URL's path, not an API route): clients of the
# service never see server paths.
_FS_PATH = re.compile(r"(?<![\w:/.~])~?/(?!v1/)(?:[\w.@+-]+/)+[\w.@+-]*")
# Credentials in a URL (postgresql://user:secret@host/db).
_URL_CREDENTIALS = re.compile(r"(\w+://)[^\s/@]+@")


def public_message(message: str, names: Iterable[object] = ()) -> str:
    """``message`` fit for a remote client: the store's own ``names`` (its path, its URL)
    replaced, other filesystem paths and URL credentials removed."""
    for name in sorted((str(n) for n in names if n), key=len, reverse=True):
        message = message.replace(name, "the memory store")
    message = _URL_CREDENTIALS.sub(r"\1", message)
    return _FS_PATH.sub("<path>", message)
