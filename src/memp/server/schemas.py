"""What the service accepts and answers: the request and response models of both transports.

Plain pydantic, no web framework: the HTTP routes take these bodies, the MCP tools take
:class:`StepIn`, and the OpenAPI page is generated from them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from memp.types import Outcome, Procedure, Program, RetrievalHit, Trajectory

KEEP_FAILED = (
    "Build a failed trajectory too: it is kept as a failed attempt, rendered apart from "
    "the procedures that worked (by default a failed trajectory is not built)."
)

# The vectors are large and mean nothing to a reader: answers leave them out unless asked.
VECTORS = {"embedding", "key_embedding", "fact_embeddings"}


def dump_procedure(p: Procedure, vectors: bool = False) -> dict[str, Any]:
    """A procedure as it goes out, with its vectors only when ``vectors``."""
    return p.model_dump(mode="json", exclude=None if vectors else VECTORS)


class _Body(BaseModel):
    # Unknown fields are rejected: a misspelt option must not be silently ignored.
    model_config = ConfigDict(extra="forbid")


class RecordRequest(_Body):
    trajectory: Trajectory
    build: Literal["trajectory", "script", "proceduralization"] | None = Field(
        None,
        description="Also build and store a procedure from it with this strategy (not from "
        "a failed trajectory unless keep_failed).",
    )
    keep_failed: bool = Field(False, description=KEEP_FAILED)


class BuildRequest(_Body):
    trajectory: Trajectory
    strategy: str = "proceduralization"
    task_key: str | None = Field(None, description="The task with entities abstracted.")
    store: bool = Field(True, description="Store the procedure (add) or only return it (build).")
    keep_failed: bool = Field(False, description=KEEP_FAILED)


class ProcedureRequest(_Body):
    procedure: Procedure


class RetrieveRequest(_Body):
    task: str = Field(min_length=1)
    strategy: str = "query"
    k: int = Field(3, ge=1, le=100)
    min_score: float = 0.0
    budget_tokens: int | None = Field(None, ge=1)
    environment: str | None = None
    task_key: str | None = None
    track: bool = Field(True, description="Count the hits as retrieved (feeds erasure).")


class RetrieveResponse(BaseModel):
    hits: list[RetrievalHit]
    rendered: str = Field(description="The hits as a prompt block of guidelines.")


class ReportRequest(_Body):
    procedure_ids: list[str] = Field(min_length=1, max_length=1000)
    success: bool


class ReportResponse(BaseModel):
    reported: int


class UpdateRequest(_Body):
    outcomes: list[Outcome] = Field(min_length=1)
    strategy: str = "validation"
    options: dict[str, Any] = Field(default_factory=dict)


class MergeRequest(_Body):
    threshold: float = Field(default=0.95, gt=0.0, le=1.0)


class StepIn(BaseModel):
    """One step of an episode as an MCP client sends it."""

    action: str = Field(description="What the agent did.")
    observation: str = Field("", description="What the environment answered.")
    thought: str | None = Field(None, description="The agent's reasoning before acting.")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# -- skills: executable procedures stepped for a remote agent -------------------------

MAX_OBSERVATION = 64 * 1024  # characters of one observation
MAX_ADMISSIBLE = 2000  # admissible actions in one step


class SkillStartRequest(_Body):
    task: str = Field(min_length=1, max_length=4000, description="The episode's task.")
    environment: str = Field(
        min_length=1,
        description="The environment's registered name (alfworld, textworld, ...): what "
        "its actions mean is known to the server by this name.",
    )
    config: dict[str, Any] | None = Field(
        None,
        description="Runtime switches and budgets (fields of memp.skills.ExecConfig, e.g. "
        '{"max_steps": 30}); by default the no-LLM configuration.',
    )
    handover_when_stuck: bool = Field(
        False,
        description="Stop at the first program step that cannot be grounded (so your LLM "
        "can take over) instead of skipping it.",
    )
    track: bool = Field(True, description="Count the procedures as retrieved.")
    adapt: bool = Field(
        False,
        description="Where no stored template matches, the server's LLM writes the task's "
        "program from the nearest stored ones (checked against the action grammar; send "
        "the first admissible actions too).",
    )
    observation: str | None = Field(
        None,
        max_length=MAX_OBSERVATION,
        description="The episode's first observation: the answer then carries the first "
        "action (otherwise send it as the first step).",
    )
    admissible: list[str] | None = Field(
        None, max_length=MAX_ADMISSIBLE, description="The admissible actions, if you have them."
    )


class SkillStepRequest(_Body):
    observation: str = Field(
        max_length=MAX_OBSERVATION, description="What the last action led to (or the first one)."
    )
    admissible: list[str] | None = Field(
        None, max_length=MAX_ADMISSIBLE, description="The admissible actions, if you have them."
    )
    done: bool = Field(
        False, description="The episode is over: the outcome (won) is counted, the session ends."
    )
    won: bool = Field(False, description="The episode was won (implies done).")


class SkillFinishRequest(_Body):
    success: bool


class SkillState(BaseModel):
    """Where a skill session stands after a request."""

    session_id: str
    action: str | None = Field(
        description="The next action to take; null: the skill stops (see stopped)."
    )
    stopped: str | None = Field(None, description="Why the skill stopped, when it did.")
    steps_taken: int
    pointer: int = Field(description="The program step the skill is on.")
    info: dict[str, Any] = Field(
        default_factory=dict, description="What the last observation told the skill."
    )
    outcome: bool | None = Field(
        None, description="The outcome counted on the procedures (the session is over)."
    )


class SkillStarted(SkillState):
    task: str
    environment: str
    procedure_id: str = Field(description="The procedure whose program the skill plays.")
    procedure_ids: list[str]
    program: Program
    binding: dict[str, str]
    notes: dict[str, Any] = Field(default_factory=dict)
