"""The LLM protocol: the door every language-model backend goes through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from typing_extensions import Unpack


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


class Completion(BaseModel):
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    model: str = ""
    cached: bool = False


class CallOptions(TypedDict, total=False):
    """The settings of one call, all optional (defaults: ``memp.llm.backend.Request``)."""

    max_tokens: int  # 256
    temperature: float  # 0.0: greedy
    stop: Sequence[str] | None
    seed: int | None
    choices: Sequence[str] | None


@runtime_checkable
class LLM(Protocol):
    """A chat model.

    ``choices``: when given, the answer must be exactly one of them. Backends with
    grammars (llama.cpp) constrain decoding; others map the answer onto the nearest
    choice. Greedy (temperature 0) is the default everywhere.
    """

    name: str

    def complete(
        self, messages: Sequence[Message], **options: Unpack[CallOptions]
    ) -> Completion: ...
