"""The spec registry (built-ins and plugins alike) and what every LLM backend shares."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest

from memp.errors import InvalidInput
from memp.llm import LLMS, make_llm, parse_llm_spec
from memp.llm import plugins as plugins_module
from memp.llm.anthropic import AnthropicLLM
from memp.llm.backend import LLMBackend, Request
from memp.llm.base import LLM, Completion
from memp.llm.cache import CompletionCache, cache_key
from memp.llm.ledger import UsageLedger
from memp.llm.plugins import Registry, Spec, after
from memp.llm.scripted import ScriptedLLM

MSGS = [{"role": "user", "content": "hi"}]


class EchoLLM(LLMBackend):
    """A plugin backend: answers with its model name and the last message."""

    def __init__(self, model: str, cache: CompletionCache | None) -> None:
        super().__init__(cache=cache)
        self.name = f"echo:{model}"
        self.calls = 0

    def _generate(self, request: Request) -> Completion:
        self.calls += 1
        text = f"{self.name} heard {request.messages[-1]['content']}"
        return Completion(text=self.chosen(text, request), prompt_tokens=2, model=self.name)


def _echo(text: str) -> Spec | None:
    model = after(text, "echo")
    return Spec(text, "echo", model) if model else None


def _build_echo(spec: Spec, cache: CompletionCache | None, **options: object) -> EchoLLM:
    return EchoLLM(spec.model, cache)


@pytest.fixture
def llms(monkeypatch):
    """The LLM registry, restored after the test."""
    monkeypatch.setattr(LLMS, "_plugins", LLMS.plugins())
    return LLMS


def test_a_plugin_registers_like_the_builtins(llms, tmp_path):
    llms.register("echo", _echo, _build_echo, help=["echo:<model>"])
    assert LLMS.help().endswith(" | echo:<model>")
    llm = make_llm("echo:parrot", cache=tmp_path / "c.sqlite")
    assert isinstance(llm, LLM) and isinstance(llm, EchoLLM)
    with UsageLedger() as ledger:
        a = llm.complete(MSGS, stop="\n")
        b = llm.complete(MSGS, stop=["\n"])  # the same request, normalised: a cache hit
        c = llm.complete(MSGS, choices=["echo:parrot heard hi!", "no"])
    assert a.text == "echo:parrot heard hi" and not a.cached and b.cached and llm.calls == 2
    assert c.text == "echo:parrot heard hi!"  # mapped onto the nearest choice
    assert [r.cached for r in ledger] == [False, True, False]
    with pytest.raises(InvalidInput, match="already registered"):
        llms.register("echo", _echo, _build_echo)
    with pytest.raises(InvalidInput, match="unknown LLM spec 'echo:'; use one of: local"):
        make_llm("echo:")


def test_a_plugin_cannot_take_over_builtin_specs(llms):
    llms.register("greedy", lambda text: Spec(text, "echo", text), _build_echo)
    assert parse_llm_spec("openai:gpt-4o") == ("openai", "gpt-4o", None)
    assert parse_llm_spec("local:fast") == ("local", "qwen2.5-coder-0.5b", None)
    assert isinstance(make_llm("anything-else"), EchoLLM)


def test_entry_point_plugins_are_loaded_and_a_broken_one_is_skipped(tmp_path, monkeypatch, caplog):
    (tmp_path / "memp_echo_plugin.py").write_text(
        "from memp.llm.plugins import Spec, after\n"
        "from memp.llm.scripted import ScriptedLLM\n"
        "def parse(text):\n"
        "    return Spec(text, 'echo', after(text, 'echo')) if after(text, 'echo') else None\n"
        "def build(spec, cache):\n"
        "    return ScriptedLLM(lambda messages: spec.model, name=spec.text)\n"
        "def register(registry):\n"
        "    registry.register('echo', parse, 'memp_echo_plugin:build', help=['echo:<m>'])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [
        EntryPoint("echo", "memp_echo_plugin:register", "memp.test"),
        EntryPoint("broken", "memp_no_such_plugin_module", "memp.test"),
    ]
    monkeypatch.setattr(
        plugins_module, "entry_points", lambda group: found if group == "memp.test" else []
    )
    builtins_ran: list[str] = []
    registry: Registry[LLM] = Registry(
        "test", "memp.test", builtins=lambda r: builtins_ran.append("yes")
    )
    plugin, spec = registry.parse("echo:parrot")
    assert builtins_ran == ["yes"] and plugin.name == "echo" and spec.model == "parrot"
    assert plugin.builder()(spec, None).complete(MSGS).text == "parrot"
    assert "broken failed to load" in caplog.text
    with pytest.raises(InvalidInput, match="unknown test spec 'x'; use one of: echo:<m>"):
        registry.parse("x")
    sys.modules.pop("memp_echo_plugin", None)


def test_scripted_spec_builds_the_test_double_without_a_cache(tmp_path):
    llm = make_llm("scripted:runner", cache=tmp_path / "c.sqlite")
    assert isinstance(llm, ScriptedLLM) and llm.cache is None and llm.name == "scripted:runner"
    with UsageLedger() as ledger:
        out = llm.complete(MSGS, choices=["look", "inventory"])
    assert out.text in {"look", "inventory"} and len(ledger) == 1
    cut = ScriptedLLM(["go to fridge 1\nObservation: x"]).complete(MSGS, stop=["\nObs"])
    assert cut.text == "go to fridge 1"
    with pytest.raises(InvalidInput, match="non-empty list"):
        llm.complete([])


def test_cache_keys_are_those_of_existing_caches(tmp_path, monkeypatch):
    # Digests written by earlier releases: a changed key would silently empty every cache.
    params = {"max_tokens": 256, "temperature": 0.0, "stop": [], "seed": None, "choices": None}
    assert Request.build(MSGS).params() == params
    old = "ca5935d36f759b2b73771eb58532ca4230982e0da70aa57445b67fba4e8e770b"
    assert cache_key("http://127.0.0.1:9/v1#m", MSGS, params) == old
    msgs = [{"role": "system", "content": "s"}, *MSGS]
    request = Request.build(msgs, max_tokens=5, stop="\n", seed=3, choices=["a", "b", "a"])
    old = "7c972c3f2ea14adc9f1654b9c2ee06eb4cd76a106635c1aede090b969d1fb52d"
    assert cache_key("https://api.anthropic.com#claude-x", msgs, request.params()) == old
    # End to end: a cached answer is served although nothing listens at the URL.
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    cache = CompletionCache(tmp_path / "c.sqlite")
    key = cache_key("http://127.0.0.1:9/v1#m", MSGS, params)
    cache.put(key, Completion(text="from the cache", model="http://127.0.0.1:9/v1#m"))
    llm = make_llm("http://127.0.0.1:9/v1#m", cache=tmp_path / "c.sqlite", max_retries=0)
    assert llm.complete(MSGS).text == "from the cache"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    claude = AnthropicLLM("claude-x", cache=cache)
    cache.put(cache_key(claude.identity, msgs, request.params()), Completion(text="cached too"))
    assert (
        claude.complete(msgs, max_tokens=5, stop="\n", seed=3, choices=["a", "b"]).text
        == "cached too"
    )
