"""MCP server: procedural memory as tools any MCP-capable agent can call.

Tools: ``retrieve_procedures`` (guidelines for a task), ``record_trajectory`` (an
episode and its outcome; it becomes a procedure under the one build rule,
:func:`memp.build.builds`: not when it failed), ``report_outcome`` (did the retrieved
procedures work), and ``list_procedures`` / ``get_procedure`` / ``retire_procedure``
to inspect and prune the memory. The server reports memp's version in its server
info. Over stdio the namespace is fixed at start; over streamable HTTP every request
needs ``Authorization: Bearer <key>`` and the key picks the namespace, exactly as in
the HTTP API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

try:
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    from memp.errors import MissingDependency

    raise MissingDependency("mcp", "server", "needed for `memp mcp`") from exc
from starlette.types import ASGIApp, Receive, Scope, Send

import memp
from memp.build import is_failure
from memp.errors import InvalidInput, MempError, public_message
from memp.server.http import Service
from memp.types import Procedure, ProcedureStatus, Step, Trajectory

INSTRUCTIONS = (
    "Procedural memory. Before a task, call retrieve_procedures with the task and follow "
    "the guidelines where they fit. After it, call record_trajectory with the actions you "
    "took and whether you succeeded, passing the ids of the procedures you were given as "
    "used_procedure_ids (or call report_outcome with them)."
)


class StepIn(BaseModel):
    action: str = Field(description="What the agent did.")
    observation: str = Field("", description="What the environment answered.")
    thought: str | None = Field(None, description="The agent's reasoning before acting.")


@contextmanager
def _as_tool_error() -> Iterator[None]:
    # A memp error is an answer the agent can act on, not a crash: pass its message on.
    try:
        yield
    except MempError as exc:
        raise ToolError(public_message(str(exc))) from exc


def build_mcp(service: Service, *, namespace: str | None = "default") -> Any:
    """The MCP server over ``service``. ``namespace``: used when the transport carries
    no API key (stdio); ``None`` makes a key mandatory."""
    server = MCPServer(
        "memp", version=memp.__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )

    def tenant(ctx: Context) -> str:
        headers = None
        try:
            headers = ctx.headers
        except (ValueError, AttributeError):
            headers = None
        if headers is not None:
            scheme, _, token = (headers.get("authorization") or "").partition(" ")
            key = service.keys.verify(token) if scheme.lower() == "bearer" and token else None
            if key is not None:
                return key.namespace
            if namespace is None:
                raise InvalidInput("missing or invalid API key: send Authorization: Bearer <key>")
        if namespace is None:
            raise InvalidInput("this server needs an API key")
        return namespace

    @server.tool()
    def retrieve_procedures(
        task: str,
        ctx: Context,
        k: int = 3,
        environment: str | None = None,
        strategy: Literal["query", "hybrid", "random", "avefact"] = "query",
        budget_tokens: int | None = None,
    ) -> dict[str, Any]:
        """Procedures that worked on similar past tasks: a guidelines block to put in
        your prompt, and each procedure's id, task, score and text."""
        with _as_tool_error():
            mem = service.memory(tenant(ctx))
            hits = mem.retrieve(
                task, strategy=strategy, k=k, budget_tokens=budget_tokens, environment=environment
            )
            return {
                "guidelines": mem.render(hits),
                "procedures": [
                    {
                        "id": h.procedure.id,
                        "task": h.procedure.task,
                        "score": round(h.score, 4),
                        "text": h.procedure.text(),
                    }
                    for h in hits
                ],
            }

    @server.tool()
    def record_trajectory(
        task: str,
        steps: list[StepIn],
        success: bool,
        ctx: Context,
        environment: str = "generic",
        build: Literal["trajectory", "script", "proceduralization", "none"] = "trajectory",
        used_procedure_ids: list[str] | None = None,
        keep_failed: bool = False,
    ) -> dict[str, Any]:
        """Store an episode and its outcome. One that did not fail is built into a
        procedure (``build``); a failed one only with ``keep_failed``, and then it is shown
        as a failed attempt to avoid. The procedures it used get their outcome counted."""
        with _as_tool_error():
            ns = tenant(ctx)
            mem = service.memory(ns)
            used = list(dict.fromkeys(used_procedure_ids or []))
            for pid in used:
                service.store.get(pid, namespace=ns)  # all ids checked before any write
            trajectory = Trajectory(
                task=task,
                environment=environment,
                steps=[
                    Step(action=s.action, observation=s.observation, thought=s.thought)
                    for s in steps
                ],
                success=success,
                metadata={"source": "mcp", "retrieved": used},
            )
            strategy = build if build != "none" and steps else None
            proc, skipped = service.record(ns, trajectory, strategy, keep_failed=keep_failed)
            if used:
                mem.report(used, success=success)
            return {
                "trajectory_id": trajectory.id,
                "procedure_id": None if proc is None else proc.id,
                "skipped": skipped,
                "reported": len(used),
            }

    @server.tool()
    def report_outcome(procedure_ids: list[str], success: bool, ctx: Context) -> dict[str, Any]:
        """Report whether procedures you were given helped the task succeed."""
        with _as_tool_error():
            ns = tenant(ctx)
            ids = list(dict.fromkeys(procedure_ids))
            for pid in ids:
                service.store.get(pid, namespace=ns)
            service.memory(ns).report(ids, success=success)
            return {"reported": len(ids)}

    @server.tool()
    def list_procedures(
        ctx: Context,
        environment: str | None = None,
        status: Literal["active", "retired", "all"] = "active",
        limit: Annotated[int, Field(ge=1, le=1000)] = 20,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> dict[str, Any]:
        """The stored procedures, oldest first: id, task, environment, version, status,
        usage counters, and whether it was kept from a failed attempt."""
        with _as_tool_error():
            mem = service.memory(tenant(ctx))
            st = None if status == "all" else ProcedureStatus(status)
            procs = mem.list(environment=environment, status=st, limit=limit, offset=offset)
            return {
                "procedures": [_summary(p) for p in procs],
                "count": mem.count(environment=environment, status=st),
            }

    @server.tool()
    def get_procedure(procedure_id: str, ctx: Context) -> dict[str, Any]:
        """One procedure in full (without its vectors): script, steps, provenance, usage."""
        with _as_tool_error():
            p = service.memory(tenant(ctx)).get(procedure_id)
            return p.model_dump(mode="json", exclude=_VECTORS)

    @server.tool()
    def retire_procedure(procedure_id: str, ctx: Context) -> dict[str, Any]:
        """Stop a procedure from being retrieved (it stays, with its history)."""
        with _as_tool_error():
            p = service.memory(tenant(ctx)).retire(procedure_id)
            return {"id": p.id, "status": p.status.value, "version": p.version}

    return server


_VECTORS = {"embedding", "key_embedding", "fact_embeddings"}


def _summary(p: Procedure) -> dict[str, Any]:
    u = p.usage
    return {
        "id": p.id,
        "task": p.task,
        "environment": p.environment,
        "version": p.version,
        "status": p.status.value,
        "usage": {"retrieved": u.retrieved, "succeeded": u.succeeded, "failed": u.failed},
        "failed_attempt": is_failure(p),
    }


class RequireKey:
    """Answer 401 to HTTP requests without a valid API key before MCP sees them."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            ok = (
                scheme.lower() == "bearer" and token and self.service.keys.verify(token) is not None
            )
            if not ok:
                body = json.dumps(
                    {"error": {"code": "unauthorized", "message": "missing or invalid API key"}}
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(
    service: Service,
    *,
    path: str = "/mcp",
    max_body: int = 4 * 1024 * 1024,
    host: str = "127.0.0.1",
) -> ASGIApp:
    """The streamable-HTTP MCP app (every request authenticated by API key).

    On a loopback ``host`` the SDK's DNS-rebinding protection accepts only local
    Host/Origin headers; on another interface put it behind a proxy you trust.
    """
    server = build_mcp(service, namespace=None)
    app = server.streamable_http_app(
        streamable_http_path=path, stateless_http=True, max_request_body_size=max_body, host=host
    )
    return RequireKey(app, service)


def run(
    db: str | Path,
    *,
    transport: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    namespace: str = "default",
    embedder: Any = None,
    llm: Any = None,
) -> None:
    """Serve the memory in ``db`` over MCP (blocks)."""
    service = Service(db, embedder=embedder, llm=llm)
    try:
        if transport == "stdio":
            build_mcp(service, namespace=namespace).run("stdio")
        else:
            import uvicorn

            uvicorn.run(http_app(service, host=host), host=host, port=port, log_level="warning")
    finally:
        service.close()
