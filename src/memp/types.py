"""The data model: the one place where memp's records are defined.

Every other module imports these classes; nothing else defines records that are
stored, sent over the wire or exported.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class Procedure(_Model):
    """A unit of procedural memory with its provenance.

    ``script`` is the abstract, general procedure (numbered steps); ``trajectory`` is
    the step-level record it came from. Build strategy ``trajectory`` fills only the
    latter, ``script`` only the former, ``proceduralization`` both. ``program`` holds
    the compiled, executable form (see :mod:`memp.execute`) when there is one.
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
    program: dict[str, Any] | None = None
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
