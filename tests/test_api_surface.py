"""The public surface, pinned: what ``memp`` exports, and MemoryAPI as both Memory (local)
and Client (remote) offer it, with the same signatures and the same argument checks."""

from __future__ import annotations

import inspect

import pytest

import memp
from memp.api import MemoryAPI
from memp.client import Client
from memp.errors import InvalidInput, UnknownOption
from memp.memory import Memory
from memp.types import Outcome, Trajectory

EXPORTED = [
    "InvalidInput",
    "MemoryAPI",
    "MempError",
    "NotFound",
    "Outcome",
    "Procedure",
    "ProcedureStatus",
    "RetrievalHit",
    "Step",
    "Trajectory",
    "UnknownOption",
    "Usage",
    "__version__",
]

METHODS = [
    "build",
    "record",
    "add",
    "add_procedure",
    "retrieve",
    "render",
    "skill",
    "learn",
    "update",
    "report",
    "merge_duplicates",
    "get",
    "list",
    "count",
    "history",
    "get_trajectory",
    "list_trajectories",
    "retire",
    "export_jsonl",
    "import_jsonl",
    "close",
    "__enter__",
    "__exit__",
]

# Nothing listens here: a call that got as far as a request would fail with BackendError.
NOWHERE = "http://127.0.0.1:9"


def test_exported_names():
    assert memp.__all__ == EXPORTED
    for name in EXPORTED:
        assert getattr(memp, name) is not None
    assert memp.MemoryAPI is MemoryAPI


def test_the_protocol_lists_the_methods():
    declared = [
        n
        for n, v in vars(MemoryAPI).items()
        if inspect.isfunction(v) and (not n.startswith("_") or n in ("__enter__", "__exit__"))
    ]
    assert declared == METHODS


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("impl", [Memory, Client], ids=["Memory", "Client"])
def test_same_signature(impl, name):
    spec = inspect.signature(getattr(MemoryAPI, name))
    got = inspect.signature(getattr(impl, name))
    # names, kinds, defaults and annotations (as written: one spelling of each type)
    assert got == spec, f"{impl.__name__}.{name}{got} is not MemoryAPI.{name}{spec}"


@pytest.fixture
def local(tmp_path):
    with Memory(tmp_path / "memp.db") as m:
        yield m


@pytest.fixture
def remote():
    with Client(NOWHERE, api_key="memp_x") as c:
        yield c


def test_both_are_memory_apis(local, remote):
    assert isinstance(local, MemoryAPI) and isinstance(remote, MemoryAPI)

    class Partial:
        def retrieve(self, task: str) -> list:
            return []

    assert not isinstance(Partial(), MemoryAPI)


BAD_CALLS = {
    "unknown retrieve strategy": (
        lambda m: m.retrieve("x", strategy="psychic"),
        UnknownOption,
        "unknown retrieve strategy 'psychic'",
    ),
    "k below one": (lambda m: m.retrieve("x", k=0), InvalidInput, "k must be >= 1, got 0"),
    "budget below one": (
        lambda m: m.retrieve("x", budget_tokens=0),
        InvalidInput,
        "budget_tokens must be >= 1",
    ),
    "unknown build strategy": (
        lambda m: m.add(Trajectory(task="t"), strategy="nope"),
        UnknownOption,
        "unknown build strategy 'nope'",
    ),
    "not a trajectory": (
        lambda m: m.build({"task": "t"}),
        InvalidInput,
        "build() takes a memp.Trajectory, got dict",
    ),
    "skill for an empty task": (
        lambda m: m.skill("  ", environment="alfworld"),
        InvalidInput,
        "skill() takes the task as a non-empty string",
    ),
    "misspelt update option": (
        lambda m: m.update([Outcome(trajectory=Trajectory(task="t"))], build_stratgy="x"),
        InvalidInput,
        "unknown update option(s): build_stratgy; valid: ",
    ),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_arguments_get_the_same_error_locally_and_remotely(local, remote, case):
    """The checks live once and run before anything is stored or sent: the Client refuses
    without reaching a server (none listens), with Memory's error and message."""
    call, error, message = BAD_CALLS[case]
    messages = []
    for m in (local, remote):
        with pytest.raises(error) as info:
            call(m)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and message in messages[0]


def test_client_calls_are_bound_like_local_ones(remote):
    with pytest.raises(TypeError, match=r"retrieve\(\)"):
        remote.retrieve()
    with pytest.raises(TypeError, match=r"list\(\)"):
        remote.list("alfworld")  # keyword-only, as on Memory
