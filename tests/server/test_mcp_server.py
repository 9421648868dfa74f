"""The MCP tools through real MCP client sessions: stdio subprocess and streamable HTTP."""

from __future__ import annotations

import sys

import anyio
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

import memp
from memp.server.http import Service, running
from memp.server.mcp import http_app
from memp.store import open_store

TOOLS = {
    "retrieve_procedures",
    "record_trajectory",
    "report_outcome",
    "list_procedures",
    "get_procedure",
    "retire_procedure",
    "skill_start",
    "skill_step",
    "skill_finish",
}
STEPS = [
    {"action": "go to countertop 1", "observation": "you see an apple"},
    {"action": "take apple 1 from countertop 1", "observation": "you pick up the apple"},
    {"action": "put apple 1 in fridge 1", "observation": "done"},
]


async def call(session: ClientSession, tool: str, **args):
    result = await session.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content


async def exercise(session: ClientSession) -> tuple[str, str]:
    """The agent loop an MCP client runs: retrieve, act, record, report."""
    init = await session.initialize()
    assert (init.server_info.name, init.server_info.version) == ("memp", memp.__version__)
    tools = await session.list_tools()
    assert {t.name for t in tools.tools} == TOOLS
    first = await call(session, "retrieve_procedures", task="put an apple in the fridge")
    assert first["procedures"] == [] and first["guidelines"] == ""
    rec = await call(
        session,
        "record_trajectory",
        task="put an apple in the fridge",
        steps=STEPS,
        success=True,
        environment="alfworld",
    )
    pid = rec["procedure_id"]
    assert pid and rec["trajectory_id"]
    got = await call(session, "retrieve_procedures", task="put a green apple in the fridge", k=2)
    assert got["procedures"][0]["id"] == pid
    assert "put apple 1 in fridge 1" in got["guidelines"]
    # the next episode used the procedure and failed; then one succeeded
    rec2 = await call(
        session,
        "record_trajectory",
        task="put a pear in the fridge",
        steps=STEPS[:1],
        success=False,
        used_procedure_ids=[pid],
    )
    assert rec2["procedure_id"] is None and rec2["reported"] == 1
    assert (await call(session, "report_outcome", procedure_ids=[pid], success=True))[
        "reported"
    ] == 1
    bad = await session.call_tool("report_outcome", {"procedure_ids": ["nope"], "success": True})
    assert bad.is_error and "nope" in bad.content[0].text
    # what the HTTP API offers besides: list, get, retire
    listed = await call(session, "list_procedures")
    assert [p["id"] for p in listed["procedures"]] == [pid] and listed["count"] == 1
    assert listed["procedures"][0]["task"] == "put an apple in the fridge"
    got = await call(session, "get_procedure", procedure_id=pid)
    assert got["id"] == pid and got["trajectory"]["steps"][2]["action"] == "put apple 1 in fridge 1"
    assert "embedding" not in got
    assert (await call(session, "retire_procedure", procedure_id=pid))["status"] == "retired"
    assert (await call(session, "list_procedures"))["procedures"] == []
    assert [
        p["id"] for p in (await call(session, "list_procedures", status="all"))["procedures"]
    ] == [pid]
    assert (await call(session, "retrieve_procedures", task="put an apple in the fridge"))[
        "procedures"
    ] == []
    missing = await session.call_tool("get_procedure", {"procedure_id": "nope"})
    assert missing.is_error and "nope" in missing.content[0].text
    return pid, rec["trajectory_id"]


def check_stored(db: str, namespace: str, pid: str, tid: str) -> None:
    store = open_store(db)
    try:
        p = store.get(pid, namespace=namespace)
        assert (p.usage.retrieved, p.usage.succeeded, p.usage.failed) == (1, 1, 1)
        assert store.get_trajectory(tid, namespace=namespace).success is True
        assert len(store.list_trajectories(namespace=namespace)) == 2
    finally:
        store.close()


def test_stdio_session(tmp_path):
    db = str(tmp_path / "memp.db")
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "memp",
            "mcp",
            "--db",
            db,
            "--embedder",
            "hash",
            "--llm",
            "none",
            "--namespace",
            "team",
        ],
    )

    async def main() -> tuple[str, str]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            return await exercise(session)

    pid, tid = anyio.run(main)
    check_stored(db, "team", pid, tid)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_streamable_http_session_with_keys(backend, tmp_path, request):
    db = (
        str(tmp_path / "memp.db")
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    svc = Service(db, embedder="hash", llm="none")
    _, key_a = svc.keys.create("a")
    _, key_b = svc.keys.create("b")

    async def session_with(url: str, key: str | None, fn):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await fn(session)

    async def other_tenant(session: ClientSession):
        await session.initialize()
        got = await call(session, "retrieve_procedures", task="put an apple in the fridge")
        return got["procedures"]

    try:
        with running(http_app(svc)) as url:
            pid, tid = anyio.run(session_with, url, key_a, exercise)
            assert anyio.run(session_with, url, key_b, other_tenant) == []
            assert httpx2.post(f"{url}/mcp", json={}).status_code == 401
        check_stored(db, "a", pid, tid)
    finally:
        svc.close()
