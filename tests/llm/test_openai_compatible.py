"""The OpenAI-compatible path against a real llama.cpp server (0.5B model) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from memp.cli import app
from memp.errors import BackendError
from memp.llm import make_llm
from memp.llm.ledger import UsageLedger
from memp.llm.openai import OpenAILLM
from memp.llm.weights import FAST_MODEL, ensure_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="module")
def embedding_server_url(tmp_path_factory):
    yield from _serve(tmp_path_factory, "--embedding", "True")


def _serve(tmp_path_factory, *extra: str):
    model = ensure_model(FAST_MODEL, progress=False)
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    log = log_path.open("wb")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
            "--n_threads", str(os.cpu_count() or 1), "--model_alias", "qwen-0.5b",
            "--verbose", "False", *extra,
        ],
        # A file, not a pipe: an unread pipe fills up and blocks the server.
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama.cpp server did not start within 180 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_chat_completion_through_the_sdk(server_url):
    llm = make_llm(f"{server_url}#qwen-0.5b", cache=False)
    assert isinstance(llm, OpenAILLM)
    with UsageLedger() as ledger:
        out = llm.complete(
            [
                {"role": "system", "content": "Answer with a single number."},
                {"role": "user", "content": "What is 2 + 3?"},
            ],
            max_tokens=8,
        )
    assert "5" in out.text
    assert out.prompt_tokens > 5 and out.completion_tokens >= 1
    assert ledger.records[0].model == f"{server_url}#qwen-0.5b"


def test_choices_with_server_side_grammar_and_nearest_mapping(server_url):
    admissible = ["go to fridge 1", "go to sinkbasin 1", 'say "done"']
    msgs = [{"role": "user", "content": "You must wash a plate. Which place do you go to first? Reply with one action."}]
    grammar = OpenAILLM("qwen-0.5b", base_url=server_url, choice_mode="grammar")
    out = grammar.complete(msgs, max_tokens=12, choices=admissible)
    assert out.text in admissible
    nearest = OpenAILLM("qwen-0.5b", base_url=server_url)
    out = nearest.complete(msgs, max_tokens=10, choices=admissible)
    assert out.text in admissible


def test_greedy_is_reproducible_and_cached(server_url, tmp_path):
    llm = make_llm(f"{server_url}#qwen-0.5b", cache=tmp_path / "cache.sqlite")
    msgs = [{"role": "user", "content": "Name one kitchen appliance."}]
    a = llm.complete(msgs, max_tokens=10)
    b = llm.complete(msgs, max_tokens=10)
    assert b.cached and b.text == a.text
    fresh = make_llm(f"{server_url}#qwen-0.5b", cache=False).complete(msgs, max_tokens=10)
    assert fresh.text == a.text and not fresh.cached


def test_unreachable_endpoint_and_missing_key(monkeypatch):
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    llm = OpenAILLM("m", base_url=dead, max_retries=0, timeout=5)
    with pytest.raises(BackendError, match=f"cannot reach the OpenAI-compatible endpoint {dead}"):
        llm.complete([{"role": "user", "content": "hi"}])
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MEMP_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY is not set"):
        make_llm("openai:gpt-4o", cache=False)


def test_doctor_checks_a_real_endpoint_and_reports_a_dead_one(server_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMP_EMBEDDER", "hash")
    runner = CliRunner()
    ok = runner.invoke(app, ["doctor", "--llm", f"{server_url}#qwen-0.5b", "--db", str(tmp_path / "m.db")])
    assert ok.exit_code == 0, ok.output
    assert "all checks passed" in ok.output and "env MEMP_EMBEDDER" in ok.output
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    bad = runner.invoke(app, ["doctor", "--llm", f"{dead}#m", "--db", str(tmp_path / "m.db")])
    assert bad.exit_code == 1
    assert "FAIL" in bad.output and "cannot reach" in bad.output


def test_embeddings_through_the_sdk(embedding_server_url):
    from memp.embed import make_embedder
    from memp.embed.openai import OpenAIEmbedder

    emb = make_embedder(f"{embedding_server_url}#qwen-0.5b", cache=False, batch_size=1)
    assert isinstance(emb, OpenAIEmbedder)
    texts = ["put a clean apple in the fridge", "heat some egg in the microwave", ""]
    vecs = emb.embed(texts)
    assert vecs.shape == (3, emb.dim) and emb.dim == 896  # Qwen2.5-0.5B's hidden size
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)  # L2-normalised
    # A chat model's pooled states are no semantic embedding: only the wire path is
    # checked here (the local embedder's tests check ranking).
    assert float(emb.embed(texts[:1])[0] @ vecs[0]) > 0.99  # stable across calls


class _Loopback(ThreadingHTTPServer):
    """An OpenAI-compatible endpoint on a free port of 127.0.0.1."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _FlakyProxy(_Loopback):
    """Answers the first requests with the given error codes, then forwards to ``target``."""

    def __init__(self, target: str, codes: list[int]) -> None:
        self.target, self.codes, self.seen = target.rstrip("/"), list(codes), []
        super().__init__(_ProxyHandler)


class _ProxyHandler(_Quiet):
    server: _FlakyProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.seen.append(self.path)
        if self.server.codes:
            code = self.server.codes.pop(0)
            data, ctype = json.dumps({"error": {"message": f"injected {code}"}}).encode(), "application/json"
        else:
            path = self.path.removeprefix("/v1")
            r = httpx.post(self.server.target + path, content=body, timeout=120,
                           headers={"content-type": "application/json"})  # fmt: skip
            code, data, ctype = r.status_code, r.content, r.headers["content-type"]
        self.send_response(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.send_header("retry-after-ms", "10")  # the SDK's backoff hint: keep the test quick
        self.end_headers()
        self.wfile.write(data)


def test_rate_limits_and_server_errors_are_retried(server_url):
    msgs = [{"role": "user", "content": "Reply with the word yes."}]
    proxy = _FlakyProxy(server_url, [429, 503])
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        out = OpenAILLM("qwen-0.5b", base_url=proxy.url, max_retries=2).complete(msgs, max_tokens=4)
        assert out.text and len(proxy.seen) == 3  # two failures, then the real answer
        proxy.codes = [429, 429]
        with pytest.raises(BackendError, match=r"rate-limiting \(429\) after all retries"):
            OpenAILLM("qwen-0.5b", base_url=proxy.url, max_retries=1).complete(msgs, max_tokens=4)
    finally:
        proxy.shutdown()
        proxy.server_close()


class _KeyRecorder(_Loopback):
    """Records the Authorization header of every call and answers with a fixed chat
    completion or embedding."""

    def __init__(self) -> None:
        self.auth: list[str] = []
        self.status = 200  # another status: answer with an error body instead
        super().__init__(_KeyHandler)


class _KeyHandler(_Quiet):
    server: _KeyRecorder

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.server.auth.append(self.headers.get("authorization", ""))
        if self.server.status != 200:
            answer: dict = {"error": {"message": "nope", "type": "x"}}
        elif self.path.endswith("/embeddings"):
            row = {"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}
            answer = {"object": "list", "model": "m", "data": [row]}
        else:
            answer = {
                "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "yes"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }  # fmt: skip
        data = json.dumps(answer).encode()
        self.send_response(self.server.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def key_recorder():
    server = _KeyRecorder()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_memp_service_key_never_reaches_a_provider(key_recorder, monkeypatch):
    from memp.embed import make_embedder

    monkeypatch.setenv("MEMP_API_KEY", "memp-service-secret")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    msgs = [{"role": "user", "content": "hi"}]
    url = key_recorder.url

    # With a provider key, the provider gets exactly that key.
    monkeypatch.setenv("OPENAI_API_KEY", "provider-key")
    make_llm(f"{url}#m", cache=False).complete(msgs, max_tokens=2)
    make_embedder(f"{url}#m", cache=False).embed(["a task"])
    assert key_recorder.auth == ["Bearer provider-key", "Bearer provider-key"]

    # Without one, a local server gets a placeholder, never the memp key.
    monkeypatch.delenv("OPENAI_API_KEY")
    key_recorder.auth.clear()
    make_llm(f"{url}#m", cache=False).complete(msgs, max_tokens=2)
    make_embedder(f"{url}#m", cache=False).embed(["a task"])
    assert len(key_recorder.auth) == 2
    assert not any("memp-service-secret" in a for a in key_recorder.auth)

    # An explicit key wins over the variable.
    monkeypatch.setenv("OPENAI_API_KEY", "provider-key")
    key_recorder.auth.clear()
    make_llm(f"{url}#m", cache=False, api_key="explicit").complete(msgs, max_tokens=2)
    assert key_recorder.auth == ["Bearer explicit"]

    # The hosted API needs its own key: MEMP_API_KEY does not stand in for it.
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(BackendError, match="OPENAI_API_KEY is not set"):
        make_llm("openai:gpt-4o", cache=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY is not set"):
        make_embedder("openai:text-embedding-3-small", cache=False)


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (403, "denied access to model 'm' (403): check the key's permissions"),
        (404, "has no model 'm' (404): check the model name (for Ollama, `ollama pull m`)"),
        (422, "answered HTTP 422 for model 'm'"),
    ],
)
def test_http_errors_say_what_to_check(key_recorder, status, says):
    key_recorder.status = status
    llm = OpenAILLM("m", base_url=key_recorder.url, max_retries=0)
    with pytest.raises(BackendError, match=re.escape(says)):
        llm.complete([{"role": "user", "content": "hi"}])
