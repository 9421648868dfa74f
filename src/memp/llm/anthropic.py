"""Anthropic backend (official ``anthropic`` SDK, Messages API).

System messages go into the ``system`` field; consecutive turns of the same role are
joined, since the API wants user/assistant alternation starting with a user turn. The
SDK retries connection errors, 408/409/429 and 5xx (see :mod:`memp.llm.remote`).
``choices`` are mapped onto the closest choice (the API has no grammars).

The current Messages API (and SDK) has no ``temperature``/``seed`` fields, so they are
not sent; ``send_temperature=True`` sends ``temperature`` in the body for servers and
older models that still take it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memp.llm.backend import Request
from memp.llm.base import Completion, Message
from memp.llm.remote import ANTHROPIC, RemoteLLM

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from memp.llm.remote import RemoteOptions

ANTHROPIC_URL = ANTHROPIC.default_url


def to_anthropic(messages: list[Message]) -> tuple[str, list[dict[str, str]]]:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns: list[dict[str, str]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if turns and turns[-1]["role"] == m["role"]:
            turns[-1]["content"] += "\n\n" + m["content"]
        else:
            turns.append({"role": m["role"], "content": m["content"]})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": "(start)"})
    return system, turns


class AnthropicLLM(RemoteLLM):
    provider = ANTHROPIC
    prefix = "anthropic"

    def __init__(
        self, model: str, *, send_temperature: bool = False, **options: Unpack[RemoteOptions]
    ) -> None:
        super().__init__(model, **options)
        self.send_temperature = send_temperature

    def _generate(self, request: Request) -> Completion:
        system, turns = to_anthropic(request.messages)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": turns,
        }
        if self.send_temperature:
            kwargs["extra_body"] = {"temperature": request.temperature}
        if system:
            kwargs["system"] = system
        if request.stop:
            kwargs["stop_sequences"] = request.stop
        resp = self.endpoint.call(self.endpoint.client.messages.create, **kwargs)
        text = "".join(getattr(b, "text", "") for b in resp.content if b.type == "text")
        return Completion(
            text=self.chosen(text, request),
            prompt_tokens=int(resp.usage.input_tokens),
            completion_tokens=int(resp.usage.output_tokens),
            model=self.name,
        )
