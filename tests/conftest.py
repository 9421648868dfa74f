"""Shared fixtures. The real local model and embedder load once per test session."""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Real-model tests must exercise the model, not answers cached by an earlier run:
    # every test session gets a fresh completion cache.
    if "MEMP_LLM_CACHE" not in os.environ:
        cache_dir = tempfile.mkdtemp(prefix="memp-test-cache-")
        os.environ["MEMP_LLM_CACHE"] = os.path.join(cache_dir, "completions.sqlite")


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


@pytest.fixture(scope="session")
def postgres_server_url():
    """A real PostgreSQL with pgvector: MEMP_TEST_DATABASE_URL, or a private server
    started from the pgserver wheel for this test session."""
    import os

    url = os.environ.get("MEMP_TEST_DATABASE_URL")
    if url:
        yield url
        return
    import shutil
    import tempfile

    import pgserver

    # Not under pytest's basetemp: that is private to root (pgserver runs postgres as
    # its own user) and pruned by concurrent pytest runs.
    pgdata = tempfile.mkdtemp(prefix="memp-pg-")
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server_url):
    """A PostgreSQL URL whose tables live in a fresh schema (one per test)."""
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in postgres_server_url else "?"
    yield f"{postgres_server_url}{sep}options={quote(f'-csearch_path={schema},public')}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
