"""memp: lifelong procedural memory for LLM agents."""

from memp.api import MemoryAPI
from memp.errors import InvalidInput, MempError, NotFound, UnknownOption
from memp.types import Outcome, Procedure, ProcedureStatus, RetrievalHit, Step, Trajectory, Usage

__version__ = "0.1.0"

__all__ = [
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


def __getattr__(name: str):  # lazy: importing memp stays cheap
    if name == "Memory":
        from memp.memory import Memory

        return Memory
    raise AttributeError(name)
