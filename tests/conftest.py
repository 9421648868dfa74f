"""Shared fixtures. The real local model and embedder load once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def local_llm():
    """The real embedded local LLM (Qwen2.5-Coder-1.5B via llama.cpp)."""
    from memp.llm import make_llm

    return make_llm("local")


@pytest.fixture(scope="session")
def local_embedder():
    """The real embedded local embedder (all-MiniLM-L6-v2 int8 ONNX)."""
    from memp.embed import make_embedder

    return make_embedder("local")
