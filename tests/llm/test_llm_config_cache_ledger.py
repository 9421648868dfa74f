"""Backend specs, configuration precedence, model assembly checks, completion cache, ledger."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from memp import config
from memp.errors import BackendError, InvalidInput, MissingDependency
from memp.llm import make_llm, parse_llm_spec
from memp.llm.cache import CompletionCache
from memp.llm.choices import choices_gbnf, nearest_choice
from memp.llm.ledger import GLOBAL, UsageLedger
from memp.llm.weights import FAST_MODEL, MODELS, ensure_model, part_files, verify_model


def test_parse_specs():
    assert parse_llm_spec("local") == ("local", "qwen2.5-coder-1.5b", None)
    assert parse_llm_spec("local:fast") == ("local", "qwen2.5-coder-0.5b", None)
    assert parse_llm_spec("/m/x.gguf") == ("gguf", "/m/x.gguf", None)
    assert parse_llm_spec("local:/m/x.gguf") == ("gguf", "/m/x.gguf", None)
    assert parse_llm_spec("openai:gpt-4o") == ("openai", "gpt-4o", None)
    assert parse_llm_spec("ollama:qwen2.5:7b") == ("openai", "qwen2.5:7b", "http://127.0.0.1:11434/v1")
    assert parse_llm_spec("anthropic:claude-x") == ("anthropic", "claude-x", None)
    assert parse_llm_spec("http://h:8000/v1#m") == ("openai", "m", "http://h:8000/v1")
    for bad in ["", "gpt4", "local:huge", "http://h:8000/v1", "mistral:7b"]:
        with pytest.raises(InvalidInput):
            parse_llm_spec(bad)
    with pytest.raises(InvalidInput, match="does not exist"):
        make_llm("/nonexistent/model.gguf")


def test_config_precedence_cli_env_file_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))  # no user-level file
    for var in config.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("MEMP_CONFIG", raising=False)
    assert config.resolve("llm") == ("local", "default")
    (tmp_path / "memp.toml").write_text('[memp]\nllm = "ollama:qwen2.5:7b"\ndb = "x.db"\nllm_cache = false\n')
    assert config.resolve("llm").value == "ollama:qwen2.5:7b"
    assert config.resolve("llm").source.startswith("memp.toml")
    assert config.resolve("llm_cache").value == "off"
    monkeypatch.setenv("MEMP_LLM", "local:fast")
    assert config.resolve("llm") == ("local:fast", "env MEMP_LLM")
    assert config.resolve("llm", "openai:gpt-4o") == ("openai:gpt-4o", "cli")
    s = config.settings(db="cli.db")
    assert s["db"] == ("cli.db", "cli") and s["embedder"] == ("local", "default")
    (tmp_path / "memp.toml").write_text('llm = "local"\nmodel = "typo"\n')
    with pytest.raises(InvalidInput, match="unknown setting 'model'"):
        config.load_file()
    (tmp_path / "memp.toml").write_text("llm = \n")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        config.load_file()


def test_missing_parts_and_corrupt_model_are_clear_errors(tmp_path, monkeypatch):
    ghost = replace(MODELS[FAST_MODEL], module_prefix="memp_no_such_part", dist_prefix="no-such-part")
    with pytest.raises(MissingDependency, match=r"pip install 'memp\[local-fast\]'"):
        part_files(ghost)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"x" * 10)
    with pytest.raises(BackendError, match="expected 491,400,064"):
        verify_model(MODELS[FAST_MODEL], bad)
    same_size = replace(MODELS[FAST_MODEL], size=10)
    with pytest.raises(BackendError, match="sha256"):
        verify_model(same_size, bad, full=True)


def test_assembly_from_part_packages_is_verified(tmp_path, monkeypatch):
    # A two-part "model" made of the first two real part files: assembled, hashed, stamped.
    parts = part_files(MODELS[FAST_MODEL])[:2]
    h = hashlib.sha256()
    for p in parts:
        h.update(p.read_bytes())
    size = sum(p.stat().st_size for p in parts)
    two = replace(MODELS[FAST_MODEL], key="two-parts", filename="two.gguf", parts=2, size=size, sha256=h.hexdigest())
    monkeypatch.setenv("MEMP_CACHE", str(tmp_path))
    monkeypatch.setitem(MODELS, "two-parts", two)
    path = ensure_model("two-parts", progress=False)
    assert path == tmp_path / "models" / "two.gguf" and path.stat().st_size == size
    assert (tmp_path / "models" / "two.gguf.verified.json").is_file()
    assert ensure_model("two-parts", progress=False) == path  # second time: stamp, no rebuild
    wrong = replace(two, key="wrong", filename="wrong.gguf", sha256="0" * 64)
    monkeypatch.setitem(MODELS, "wrong", wrong)
    with pytest.raises(BackendError, match="not the pinned ones"):
        ensure_model("wrong", progress=False)
    assert not list((tmp_path / "models").glob("wrong*"))  # no half or wrong file left


def test_gbnf_factors_shared_prefixes_and_escapes():
    g = choices_gbnf(["go to cabinet 1", "go to cabinet 10", 'say "a\\b"'])
    assert '"go to cabinet 1" n0' in g and 'n0 ::= ("0")?' in g and '"say \\"a\\\\b\\""' in g
    assert nearest_choice("I will go to Cabinet 10.", ["go to cabinet 1", "go to cabinet 10"]) == "go to cabinet 10"
    assert nearest_choice("`look`", ["look", "inventory"]) == "look"


def test_completion_cache_and_ledger_with_the_real_model(local_llm, tmp_path):
    llm = make_llm("local", cache=tmp_path / "completions.sqlite")
    msgs = [{"role": "user", "content": "Reply with the word yes or no: is ice cold?"}]
    before = len(GLOBAL)
    with UsageLedger(tmp_path / "usage.jsonl", tag="run-1") as ledger:
        a = llm.complete(msgs, max_tokens=3, choices=["yes", "no"])
        b = llm.complete(msgs, max_tokens=3, choices=["yes", "no"])
        c = llm.complete(msgs, max_tokens=3, choices=["no", "yes"])  # other params: miss
    assert a.text == "yes" and not a.cached
    assert b.cached and b.text == a.text and b.prompt_tokens == a.prompt_tokens
    assert not c.cached and c.text == "yes"
    s = ledger.summary()
    assert s.calls == 3 and s.cached_calls == 1 and s.prompt_tokens == 3 * a.prompt_tokens
    assert [r.tag for r in ledger] == ["run-1"] * 3
    assert len(GLOBAL) == before + 3
    reloaded = UsageLedger.load(tmp_path / "usage.jsonl")
    assert reloaded.summary().calls == 3
    assert len(CompletionCache(tmp_path / "completions.sqlite")) == 2
    # Sampling bypasses the cache unless asked.
    llm.complete(msgs, max_tokens=2, temperature=0.8, seed=1)
    assert len(CompletionCache(tmp_path / "completions.sqlite")) == 2
    with pytest.raises(InvalidInput, match="max_tokens"):
        llm.complete(msgs, max_tokens=0)
