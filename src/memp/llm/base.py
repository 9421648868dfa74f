"""The LLM protocol: the door every language-model backend goes through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, TypedDict, runtime_checkable

from pydantic import BaseModel


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


@runtime_checkable
class LLM(Protocol):
    """A chat model.

    ``choices``: when given, the answer must be exactly one of them. Backends with
    grammars (llama.cpp) constrain decoding; others map the answer onto the nearest
    choice. Greedy (temperature 0) is the default everywhere.
    """

    name: str

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        choices: Sequence[str] | None = None,
    ) -> Completion: ...
