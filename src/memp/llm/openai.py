"""OpenAI-compatible chat backend (official ``openai`` SDK).

One client for OpenAI and every server speaking its API: vLLM, Ollama, LM Studio,
llama.cpp's server. Retries, timeouts, keys and errors: :mod:`memp.llm.remote`.

``choices``: ``choice_mode="nearest"`` (default) maps the free answer onto the closest
choice; ``"grammar"`` sends a GBNF grammar (llama.cpp server); ``"guided"`` sends
vLLM's ``guided_choice``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memp.errors import BackendError, UnknownOption
from memp.llm.backend import Request
from memp.llm.base import Completion
from memp.llm.choices import choices_gbnf
from memp.llm.remote import OPENAI, RemoteLLM

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from memp.llm.remote import RemoteOptions

OPENAI_URL = OPENAI.default_url
CHOICE_MODES = ("nearest", "grammar", "guided")


class OpenAILLM(RemoteLLM):
    """A chat model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    provider = OPENAI
    prefix = "openai"

    def __init__(
        self, model: str, *, choice_mode: str = "nearest", **options: Unpack[RemoteOptions]
    ) -> None:
        if choice_mode not in CHOICE_MODES:
            raise UnknownOption("choice mode", choice_mode, CHOICE_MODES)
        super().__init__(model, **options)
        self.choice_mode = choice_mode

    def _generate(self, request: Request) -> Completion:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            kwargs["stop"] = request.stop
        if request.seed is not None:
            kwargs["seed"] = request.seed
        choices = request.choices
        if choices and self.choice_mode == "grammar":
            kwargs["extra_body"] = {"grammar": choices_gbnf(choices)}
        elif choices and self.choice_mode == "guided":
            kwargs["extra_body"] = {"guided_choice": choices}
        resp = self.endpoint.call(self.endpoint.client.chat.completions.create, **kwargs)
        if not resp.choices:
            raise BackendError(f"{self.base_url} returned no choices for model {self.model!r}")
        usage = resp.usage
        return Completion(
            text=self.chosen(resp.choices[0].message.content or "", request),
            prompt_tokens=int(usage.prompt_tokens) if usage else 0,
            completion_tokens=int(usage.completion_tokens) if usage else 0,
            model=self.name,
        )
