"""The data model: the one place where memp's records are defined.

Every other module imports these classes; nothing else defines records that are
stored, sent over the wire or exported.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class _Model(BaseModel):
    # Unknown fields are errors: a typo in a trajectory file must not silently vanish.
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


Actor = Literal["llm", "skill", "expert", "human", "scripted"]


class Step(_Model):
    """One agent step: what it thought, what it did, what the environment answered."""

    thought: str | None = None
    action: str
    observation: str = ""
    reward: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    # Who chose the action; hand-overs between an executable procedure and the LLM
    # show up as changes of actor.
    actor: Actor | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class Trajectory(_Model):
    """A whole episode: the raw material procedural memory is built from."""

    id: str = Field(default_factory=new_id)
    task: str
    environment: str = "generic"
    steps: list[Step] = Field(default_factory=list)
    success: bool | None = None
    reward: float = 0.0
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=now)

    @model_validator(mode="after")
    def _totals(self) -> Trajectory:
        # Totals default to the sum over steps; an explicit larger total (e.g. tokens
        # spent outside steps, like building a plan) is kept.
        self.prompt_tokens = max(self.prompt_tokens, sum(s.prompt_tokens for s in self.steps))
        self.completion_tokens = max(
            self.completion_tokens, sum(s.completion_tokens for s in self.steps)
        )
        return self

    @property
    def actions(self) -> list[str]:
        return [s.action for s in self.steps]


class ProcedureStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


class Usage(_Model):
    """How a procedure fared after being retrieved (drives erasure)."""

    retrieved: int = 0
    succeeded: int = 0
    failed: int = 0
    last_used_at: datetime | None = None

    @property
    def success_rate(self) -> float | None:
        done = self.succeeded + self.failed
        return None if done == 0 else self.succeeded / done


PROGRAM_VERSION = 1
StepOp = Literal["act", "find", "read"]
# The fields each kind of step carries (and writes out, in this order).
_STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "act": ("op", "action", "at", "distinct"),
    "find": ("op", "what"),
    "read": ("op", "action", "slot", "at", "before", "after"),
}


class ProgramStep(_Model):
    """One step of a compiled program.

    - ``act``: do ``action`` (an action template: ``{slot}`` for a bound value, ``{@}``
      for the current place, ``<type>`` for any instance of a type, ``<*>`` for any
      words) at ``at``: ``None`` (no place), ``"*"`` (anywhere), ``"{slot}"`` or
      ``"<type>"`` (a place of that kind), ``"@slot"`` (where the search found the
      slot's entity). ``distinct``: slots that must take an instance no earlier copy
      of this step took (the second of two apples).
    - ``find``: search places until the next step can be done; ``what`` is the slot.
    - ``read``: do ``action`` and bind ``slot`` to the words of its observation
      between the ``before`` and ``after`` words (a value only a recipe names).
    """

    op: StepOp
    action: str | None = None
    what: str | None = None
    slot: str | None = None
    at: str | None = None
    before: list[str] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)
    distinct: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> ProgramStep:
        need = {"act": ("action",), "find": ("what",), "read": ("action", "slot")}[self.op]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.op!r} program step needs {', '.join(missing)}")
        return self

    @model_serializer(mode="wrap")
    def _only_own_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Written as the stored JSON has always been: only the kind's own keys, and
        # ``distinct`` only when there is one.
        data = handler(self)
        out = {k: data[k] for k in _STEP_FIELDS[self.op] if k in data}
        if not self.distinct:
            out.pop("distinct", None)
        return out


class ProgramPriors(_Model):
    """Where things were found: entity type -> place type -> count, and per place type
    how often it was visited and how often it had to be opened to show its contents."""

    found: dict[str, dict[str, int]] = Field(default_factory=dict)
    visits: dict[str, int] = Field(default_factory=dict)
    reveals: dict[str, int] = Field(default_factory=dict)


class Program(_Model):
    """A procedure compiled from same-template trajectories, run by :mod:`memp.skills`.

    ``key`` is the task template (``put a hot {object} in {target}``) and ``slots`` its
    slots; ``reveal`` holds the action templates that only looked inside a place
    (``open {@}``); ``generalized`` is false for a trajectory kept literally (no
    compilation); ``sources`` are the trajectories it came from; ``priors`` the search
    priors learned with it (absent when none were stored).
    """

    version: int = PROGRAM_VERSION
    key: str
    slots: list[str] = Field(default_factory=list)
    steps: list[ProgramStep] = Field(default_factory=list)
    reveal: list[str] = Field(default_factory=list)
    generalized: bool = True
    sources: list[str] = Field(default_factory=list)
    priors: ProgramPriors | None = None

    @model_serializer(mode="wrap")
    def _without_missing_priors(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if self.priors is None:
            data.pop("priors", None)
        return data


class Procedure(_Model):
    """A unit of procedural memory with its provenance.

    ``script`` is the abstract, general procedure (numbered steps); ``trajectory`` is
    the step-level record it came from. Build strategy ``trajectory`` fills only the
    latter, ``script`` only the former, ``proceduralization`` both. ``program`` holds
    the compiled, executable form (a :class:`Program`) when there is one.
    """

    id: str = Field(default_factory=new_id)
    namespace: str = "default"
    task: str
    # The task with its entities abstracted ("put a hot {object} in {target}"):
    # retrieval keys on it as well as on the raw text.
    task_key: str | None = None
    environment: str = "generic"
    build: str = "proceduralization"
    script: str | None = None
    trajectory: Trajectory | None = None
    facts: list[str] = Field(default_factory=list)
    program: Program | None = None
    # Vectors are kept by the store; they travel with the record in export/import.
    embedding: list[float] | None = None
    key_embedding: list[float] | None = None
    fact_embeddings: list[list[float]] = Field(default_factory=list)
    source_trajectory_id: str | None = None
    source_model: str | None = None
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)
    version: int = 1
    parent_id: str | None = None
    status: ProcedureStatus = ProcedureStatus.ACTIVE
    usage: Usage = Field(default_factory=Usage)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def text(self) -> str:
        """The text a reader of this procedure is given (what the budget counts)."""
        parts: list[str] = []
        if self.script:
            parts.append(self.script.strip())
        if self.trajectory is not None and self.trajectory.steps:
            lines = [f"> {s.action}" for s in self.trajectory.steps]
            parts.append("Example actions:\n" + "\n".join(lines))
        return "\n".join(parts)


class RetrievalHit(_Model):
    procedure: Procedure
    score: float
    # Which signals matched and their individual scores, e.g.
    # {"dense": 0.82, "bm25": 3.1, "facts": ["apple", "fridge"]}.
    signals: dict[str, Any] = Field(default_factory=dict)


class Outcome(_Model):
    """What happened when an agent used retrieved procedures on a task."""

    trajectory: Trajectory
    used: list[str] = Field(default_factory=list)  # ids of procedures that were retrieved
    followed: list[str] | None = None  # ids actually followed, if known (default: used)
