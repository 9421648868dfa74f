"""MCP server: procedural memory as tools any MCP-capable agent can call.

Tools: ``retrieve_procedures`` (guidelines for a task), ``record_trajectory`` (an
episode and its outcome; it becomes a procedure under the one build rule,
:func:`memp.build.builds`: not when it failed), ``report_outcome`` (did the retrieved
procedures work), and ``list_procedures`` / ``get_procedure`` / ``retire_procedure``
to inspect and prune the memory; ``skill_start`` / ``skill_step`` / ``skill_finish``
have the server step an executable procedure for an agent that owns its environment
(sessions in the server's memory, as over HTTP). Each tool is one call of
:class:`memp.server.service.Service`, as each HTTP route is. The server reports memp's
version in its server info. Over stdio the namespace is fixed at start; over streamable
HTTP every request needs ``Authorization: Bearer <key>`` and the key picks the
namespace, exactly as in the HTTP API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

try:
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    from memp.errors import MissingDependency

    raise MissingDependency("mcp", "server", "needed for `memp mcp`") from exc
from starlette.types import ASGIApp, Receive, Scope, Send

import memp
from memp.build import is_failure
from memp.errors import InvalidInput, MempError
from memp.server.schemas import MAX_ADMISSIBLE, MAX_OBSERVATION, StepIn, dump_procedure
from memp.server.service import (
    DEFAULT_MAX_BODY,
    Failure,
    Service,
    Unauthorized,
    send_failure,
)
from memp.types import Procedure, ProcedureStatus, Step, Trajectory

INSTRUCTIONS = (
    "Procedural memory. Before a task, call retrieve_procedures with the task and follow "
    "the guidelines where they fit. After it, call record_trajectory with the actions you "
    "took and whether you succeeded, passing the ids of the procedures you were given as "
    "used_procedure_ids (or call report_outcome with them). In an environment memp knows "
    "(alfworld, textworld, ...), skill_start can supply the actions step by step."
)


def build_mcp(service: Service, *, namespace: str | None = "default") -> Any:
    """The MCP server over ``service``. ``namespace``: used when the transport carries
    no API key (stdio); ``None`` makes a key mandatory."""
    server = MCPServer(
        "memp", version=memp.__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )

    @contextmanager
    def answer() -> Iterator[None]:
        # A memp error is an answer the agent can act on, not a crash: pass its message on.
        try:
            yield
        except MempError as exc:
            raise ToolError(service.failure(exc).message) from exc

    def tenant(ctx: Context) -> str:
        try:
            headers = ctx.headers
        except (ValueError, AttributeError):  # stdio: no request, no headers
            headers = None
        if headers is not None:
            try:
                return service.authenticate(headers.get("authorization"))
            except Unauthorized:
                if namespace is None:
                    raise InvalidInput(
                        "missing or invalid API key: send Authorization: Bearer <key>"
                    ) from None
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
        with answer():
            hits, rendered = service.retrieve(
                tenant(ctx),
                task,
                strategy=strategy,
                k=k,
                budget_tokens=budget_tokens,
                environment=environment,
            )
            return {
                "guidelines": rendered,
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
        with answer():
            ns = tenant(ctx)
            used = list(dict.fromkeys(used_procedure_ids or []))
            service.own(ns, used)  # all ids checked before the episode is written
            trajectory = Trajectory(
                task=task,
                environment=environment,
                steps=[Step(**s.model_dump()) for s in steps],
                success=success,
                metadata={"source": "mcp", "retrieved": used},
            )
            strategy = build if build != "none" and steps else None
            proc, skipped = service.record(ns, trajectory, strategy, keep_failed=keep_failed)
            reported = service.report(ns, used, success=success) if used else 0
            return {
                "trajectory_id": trajectory.id,
                "procedure_id": None if proc is None else proc.id,
                "skipped": skipped,
                "reported": reported,
            }

    @server.tool()
    def report_outcome(procedure_ids: list[str], success: bool, ctx: Context) -> dict[str, Any]:
        """Report whether procedures you were given helped the task succeed."""
        with answer():
            ids = list(dict.fromkeys(procedure_ids))
            return {"reported": service.report(tenant(ctx), ids, success=success)}

    @server.tool()
    def skill_start(
        task: str,
        environment: str,
        ctx: Context,
        observation: Annotated[str | None, Field(max_length=MAX_OBSERVATION)] = None,
        admissible: Annotated[list[str] | None, Field(max_length=MAX_ADMISSIBLE)] = None,
        max_steps: Annotated[int | None, Field(ge=1, le=1000)] = None,
        handover_when_stuck: bool = False,
        adapt: bool = False,
    ) -> dict[str, Any]:
        """Get a skill (a compiled program from past episodes of tasks like this one) for
        a task in your environment (its name: alfworld, textworld, ...). Returns a
        session_id, the program and its binding, and, if you pass the episode's first
        observation, the first action. Then call skill_step with each observation.
        adapt: where no stored program fits the task, the server's LLM writes one from
        the nearest (pass the first observation's admissible actions too)."""
        with answer():
            config = None if max_steps is None else {"max_steps": max_steps}
            return service.skill_start(
                tenant(ctx),
                task,
                environment,
                config=config,
                handover_when_stuck=handover_when_stuck,
                observation=observation,
                admissible=admissible,
                adapt=adapt,
            )

    @server.tool()
    def skill_step(
        session_id: str,
        observation: Annotated[str, Field(max_length=MAX_OBSERVATION)],
        ctx: Context,
        admissible: Annotated[list[str] | None, Field(max_length=MAX_ADMISSIBLE)] = None,
        done: bool = False,
        won: bool = False,
    ) -> dict[str, Any]:
        """Send what the last action led to; get the next action to take, or action null
        and why the skill stopped (act on your own then, and call skill_finish). With
        done (or won) the episode's outcome is counted and the session ends."""
        with answer():
            return service.skill_step(
                tenant(ctx), session_id, observation, admissible, done=done, won=won
            )

    @server.tool()
    def skill_finish(session_id: str, success: bool, ctx: Context) -> dict[str, Any]:
        """Say whether the episode succeeded: counted on the skill's procedures, and the
        session ends."""
        with answer():
            return service.skill_finish(tenant(ctx), session_id, success=success)

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
        with answer():
            ns = tenant(ctx)
            st = None if status == "all" else ProcedureStatus(status)
            procs = service.procedures(
                ns, environment=environment, status=st, limit=limit, offset=offset
            )
            return {
                "procedures": [_summary(p) for p in procs],
                "count": service.count(ns, environment=environment, status=st),
            }

    @server.tool()
    def get_procedure(procedure_id: str, ctx: Context) -> dict[str, Any]:
        """One procedure in full (without its vectors): script, steps, provenance, usage."""
        with answer():
            return dump_procedure(service.procedure(tenant(ctx), procedure_id))

    @server.tool()
    def retire_procedure(procedure_id: str, ctx: Context) -> dict[str, Any]:
        """Stop a procedure from being retrieved (it stays, with its history)."""
        with answer():
            p = service.retire(tenant(ctx), procedure_id)
            return {"id": p.id, "status": p.status.value, "version": p.version}

    return server


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
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            try:
                self.service.authenticate(header.decode("latin-1"))
            except Unauthorized as exc:
                refusal = Failure(401, exc.code, "missing or invalid API key", headers=exc.headers)
                await send_failure(send, refusal)
                return
        await self.app(scope, receive, send)


def http_app(
    service: Service,
    *,
    path: str = "/mcp",
    max_body: int = DEFAULT_MAX_BODY,
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
