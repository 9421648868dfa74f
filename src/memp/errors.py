"""Errors memp raises: each says what was wrong and what to do about it."""

from __future__ import annotations

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
