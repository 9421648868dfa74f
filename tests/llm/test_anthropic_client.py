"""The Anthropic backend against a local HTTP server speaking the Messages API wire format."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from memp.errors import BackendError
from memp.llm import make_llm
from memp.llm.anthropic import AnthropicLLM
from memp.llm.ledger import UsageLedger


class FakeMessagesAPI(BaseHTTPRequestHandler):
    """POST /v1/messages: answers like api.anthropic.com; can fail with 429 first."""

    server: FakeServer

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        srv = self.server
        srv.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path != "/v1/messages":
            return self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": "no such path"}})
        # Older SDKs send x-api-key, newer ones a bearer token.
        key = self.headers.get("x-api-key") or self.headers.get("authorization", "").removeprefix("Bearer ")
        if key != "test-key":
            return self._send(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        if srv.status != 200:
            return self._send(srv.status, {"type": "error", "error": {"type": "x", "message": "nope"}})
        if srv.fail_first > 0:
            srv.fail_first -= 1
            return self._send(
                429,
                {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
                {"retry-after": "0"},
            )
        last = body["messages"][-1]["content"]
        text = srv.answer(last) if callable(srv.answer) else srv.answer
        self._send(
            200,
            {
                "id": f"msg_{len(srv.requests)}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 11 * len(body["messages"]), "output_tokens": 3},
            },
        )

    def _send(self, code: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class FakeServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeMessagesAPI)
        self.requests: list[dict] = []
        self.fail_first = 0
        self.status = 200  # another status: answer every call with that error
        self.answer: object = "go to fridge 1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def fake():
    srv = FakeServer()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _llm(url: str, **kw) -> AnthropicLLM:
    return AnthropicLLM("claude-test", base_url=url, api_key="test-key", **kw)


def test_messages_wire_format_and_usage(fake):
    llm = _llm(fake.url)
    msgs = [
        {"role": "system", "content": "You are a robot."},
        {"role": "user", "content": "Task: cool an apple."},
        {"role": "user", "content": "Next action?"},
    ]
    with UsageLedger() as ledger:
        out = llm.complete(msgs, max_tokens=20, stop=["\n"])
    assert out.text == "go to fridge 1"
    assert out.prompt_tokens == 11 and out.completion_tokens == 3
    assert out.model == "anthropic:claude-test"
    assert ledger.summary().calls == 1
    req = fake.requests[-1]
    body = req["body"]
    assert req["headers"]["anthropic-version"]
    assert body["system"] == "You are a robot."
    # Consecutive user turns are joined: the API wants alternating roles.
    assert body["messages"] == [{"role": "user", "content": "Task: cool an apple.\n\nNext action?"}]
    assert body["max_tokens"] == 20 and body["stop_sequences"] == ["\n"]
    assert "temperature" not in body  # the current Messages API has no such field
    _llm(fake.url, send_temperature=True).complete(msgs, temperature=0.5)
    assert fake.requests[-1]["body"]["temperature"] == 0.5


def test_retries_429_then_succeeds(fake):
    fake.fail_first = 2
    out = _llm(fake.url, max_retries=3).complete([{"role": "user", "content": "hi"}])
    assert out.text == "go to fridge 1"
    assert len(fake.requests) == 3


def test_gives_up_after_retries_with_clear_error(fake):
    fake.fail_first = 10
    with pytest.raises(BackendError, match="rate-limiting"):
        _llm(fake.url, max_retries=1).complete([{"role": "user", "content": "hi"}])
    assert len(fake.requests) == 2


def test_choices_map_free_text_to_an_admissible_action(fake):
    fake.answer = "I think I should open the fridge 1."
    out = _llm(fake.url).complete(
        [{"role": "user", "content": "act"}], choices=["open fridge 1", "go to sinkbasin 1"]
    )
    assert out.text == "open fridge 1"


def test_bad_key_and_unreachable_endpoint_and_missing_key(fake, monkeypatch):
    with pytest.raises(BackendError, match="rejected the API key"):
        AnthropicLLM("m", base_url=fake.url, api_key="wrong").complete([{"role": "user", "content": "x"}])
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(BackendError, match=f"cannot reach the Anthropic endpoint {dead}"):
        _llm(dead, max_retries=0, timeout=5).complete([{"role": "user", "content": "x"}])
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(BackendError, match="ANTHROPIC_API_KEY is not set"):
        make_llm("anthropic:claude-test", cache=False)


def test_spec_and_completion_cache(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    llm = make_llm("anthropic:claude-test", cache=tmp_path / "c.sqlite")
    msgs = [{"role": "user", "content": "hi"}]
    a = llm.complete(msgs)
    b = llm.complete(msgs)
    assert not a.cached and b.cached and a.text == b.text
    assert len(fake.requests) == 1
    # Sampling bypasses the cache unless asked.
    llm.complete(msgs, temperature=0.7)
    llm.complete(msgs, temperature=0.7)
    assert len(fake.requests) == 3


@pytest.mark.parametrize("status", [403, 404, 422])
def test_http_errors_say_what_to_check(fake, status):
    fake.status = status
    with pytest.raises(BackendError) as e:
        _llm(fake.url, max_retries=0).complete([{"role": "user", "content": "x"}])
    says = {
        403: "denied access to model 'claude-test' (403): check the key's permissions",
        404: "has no model 'claude-test' (404): check the model name",
        422: "answered HTTP 422 for model 'claude-test'",
    }[status]
    assert says in str(e.value) and "ollama" not in str(e.value)  # hints stay with their provider
