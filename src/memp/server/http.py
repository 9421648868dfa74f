"""The memory service over HTTP: FastAPI routes onto :class:`memp.server.service.Service`.

Every route under ``/v1`` needs ``Authorization: Bearer <key>``; the key decides
the namespace, so a caller never names one and cannot reach another tenant's data.
Errors are JSON: ``{"error": {"code": ..., "message": ..., "details": ...}}``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import memp
from memp.errors import MempError, StoreError
from memp.server.schemas import (
    BuildRequest,
    ErrorResponse,
    MergeRequest,
    ProcedureRequest,
    RecordRequest,
    ReportRequest,
    ReportResponse,
    RetrieveRequest,
    RetrieveResponse,
    SkillFinishRequest,
    SkillStarted,
    SkillStartRequest,
    SkillState,
    SkillStepRequest,
    UpdateRequest,
    dump_procedure,
)
from memp.server.service import (
    DEFAULT_MAX_BODY,
    Failure,
    Service,
    send_failure,
    too_large,
)
from memp.types import ProcedureStatus, Trajectory

__all__ = ["DEFAULT_MAX_BODY", "Service", "create_app", "running", "serving"]


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (413) before any handler runs.

    The body is read here, so a client that lies in Content-Length or streams
    chunks cannot get past the limit.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await send_failure(send, too_large(self.limit))


def _answer(failure: Failure) -> JSONResponse:
    return JSONResponse(failure.payload(), status_code=failure.status, headers=failure.headers)


def _request_error(exc: RequestValidationError) -> Failure:
    """A body that does not parse or fit the schema, said in the service's error shape."""
    errors = exc.errors()
    details = [
        {"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in errors
    ]
    if any(e.get("type") == "json_invalid" for e in errors):
        return Failure(400, "malformed_json", "the request body is not valid JSON", details)
    unknown = [
        ".".join(map(str, e["loc"][1:])) for e in errors if e.get("type") == "extra_forbidden"
    ]
    if unknown:
        msg = f"unknown field(s): {', '.join(unknown)}; see /docs for the accepted fields"
        return Failure(422, "unknown_field", msg, details)
    return Failure(
        422, "invalid_request", "the request does not match the schema; see details", details
    )


def _status(value: ProcedureStatus | Literal["all"]) -> ProcedureStatus | None:
    return None if value == "all" else value


def create_app(
    db: str | Path = "memp.db",
    *,
    embedder: Any = None,
    llm: Any = None,
    auth: bool = True,
    namespace: str = "default",
    max_body: int = DEFAULT_MAX_BODY,
    service: Service | None = None,
) -> FastAPI:
    """Build the FastAPI app serving the memory in ``db`` (SQLite path or postgresql:// URL).

    ``embedder`` / ``llm`` are specs or instances (``llm=None``: strategies that need
    an LLM answer 422). With ``auth=False`` every request uses ``namespace``: only for
    a single trusted user on localhost.
    """
    svc = service or Service(db, embedder=embedder, llm=llm)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        yield
        if service is None:
            svc.close()

    # Swagger UI and ReDoc assets are served from the fastapi-offline package (under
    # /static-offline-docs), so /docs works with no network; the validator badge would
    # send the spec's URL to an outside host.
    app = FastAPIOffline(
        swagger_ui_parameters={"validatorUrl": None},
        title="memp memory service",
        version=memp.__version__,
        description="Procedural memory for LLM agents: record trajectories, build and retrieve "
        "procedures, report outcomes. Authenticate with `Authorization: Bearer <API key>`; "
        "the key's namespace scopes every call.",
        lifespan=lifespan,
        responses={
            401: {"model": ErrorResponse},
            404: {"model": ErrorResponse},
            413: {"model": ErrorResponse},
            422: {"model": ErrorResponse},
            429: {"model": ErrorResponse},
        },
    )
    app.state.service = svc
    app.add_middleware(BodyLimit, limit=max_body)

    @app.exception_handler(MempError)
    async def _memp_error(_: Request, exc: MempError) -> JSONResponse:
        return _answer(svc.failure(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer(_request_error(exc))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        # A bug or an unreachable database: say so in the same shape, without internals.
        import logging

        logging.getLogger("memp.server").exception("unhandled error")
        msg = f"internal error ({type(exc).__name__}); see server log"
        return _answer(Failure(500, "internal_error", msg))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _answer(Failure(exc.status_code, code, str(exc.detail)))

    def tenant(request: Request) -> str:
        if not auth:
            return namespace
        return svc.authenticate(request.headers.get("authorization"))

    Tenant = Depends(tenant)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": memp.__version__}

    @app.get("/v1/whoami", tags=["service"])
    def whoami(ns: str = Tenant) -> dict[str, str]:
        return {"namespace": ns}

    @app.post("/v1/trajectories", status_code=201, tags=["memory"])
    def record(body: RecordRequest, ns: str = Tenant) -> dict[str, Any]:
        """Store a raw trajectory; with ``build`` also build and store a procedure from it
        (a failed trajectory only with ``keep_failed``; ``skipped`` says why not)."""
        proc, skipped = svc.record(ns, body.trajectory, body.build, keep_failed=body.keep_failed)
        # Procedures go out without their vectors, as everywhere (?vectors=true on GET).
        return {
            "trajectory_id": body.trajectory.id,
            "procedure": None if proc is None else dump_procedure(proc),
            "skipped": skipped,
        }

    @app.get("/v1/trajectories", tags=["memory"])
    def list_trajectories(
        ns: str = Tenant,
        environment: str | None = None,
        limit: int | None = Query(None, ge=1, le=10000),
        offset: int = Query(0, ge=0),
    ) -> list[Trajectory]:
        return svc.trajectories(ns, environment=environment, limit=limit, offset=offset)

    @app.get("/v1/trajectories/{trajectory_id}", tags=["memory"])
    def get_trajectory(trajectory_id: str, ns: str = Tenant) -> Trajectory:
        return svc.trajectory(ns, trajectory_id)

    @app.post("/v1/build", status_code=201, tags=["memory"])
    def build(body: BuildRequest, ns: str = Tenant) -> dict[str, Any]:
        """Build a procedure from a trajectory; stored unless ``store`` is false. A failed
        trajectory is refused (422) unless ``keep_failed``."""
        return dump_procedure(
            svc.build(ns, body.trajectory, **body.model_dump(exclude={"trajectory"}))
        )

    @app.post("/v1/procedures", status_code=201, tags=["procedures"])
    def add_procedure(body: ProcedureRequest, ns: str = Tenant) -> dict[str, Any]:
        p = body.procedure
        return dump_procedure(svc.add_procedure(ns, p, named="namespace" in p.model_fields_set))

    @app.post("/v1/retrieve", response_model=RetrieveResponse, tags=["memory"])
    def retrieve(body: RetrieveRequest, ns: str = Tenant, vectors: bool = False) -> dict[str, Any]:
        hits, rendered = svc.retrieve(ns, **body.model_dump())
        return {
            "hits": [
                {**h.model_dump(mode="json"), "procedure": dump_procedure(h.procedure, vectors)}
                for h in hits
            ],
            "rendered": rendered,
        }

    @app.post("/v1/report", response_model=ReportResponse, tags=["memory"])
    def report(body: ReportRequest, ns: str = Tenant) -> ReportResponse:
        """Report whether retrieved procedures worked (usage counters)."""
        return ReportResponse(reported=svc.report(ns, body.procedure_ids, success=body.success))

    @app.post("/v1/update", tags=["memory"])
    def update(body: UpdateRequest, ns: str = Tenant) -> Any:
        """Apply an update strategy to a group of outcomes."""
        return svc.update(ns, body.outcomes, body.strategy, body.options).model_dump(mode="json")

    @app.post("/v1/merge", tags=["memory"])
    def merge(body: MergeRequest, ns: str = Tenant) -> Any:
        """Consolidate near-duplicate procedures of the namespace (cosine >= threshold)."""
        return svc.merge(ns, body.threshold).model_dump(mode="json")

    @app.get("/v1/procedures", tags=["procedures"])
    def list_procedures(
        ns: str = Tenant,
        environment: str | None = None,
        status: ProcedureStatus | Literal["all"] = ProcedureStatus.ACTIVE,
        limit: int | None = Query(None, ge=1, le=10000),
        offset: int = Query(0, ge=0),
        vectors: bool = False,
    ) -> list[dict[str, Any]]:
        procs = svc.procedures(
            ns, environment=environment, status=_status(status), limit=limit, offset=offset
        )
        return [dump_procedure(p, vectors) for p in procs]

    @app.get("/v1/procedures/count", tags=["procedures"])
    def count_procedures(
        ns: str = Tenant,
        environment: str | None = None,
        status: ProcedureStatus | Literal["all"] = ProcedureStatus.ACTIVE,
    ) -> dict[str, int]:
        return {"count": svc.count(ns, environment=environment, status=_status(status))}

    @app.get("/v1/procedures/{procedure_id}", tags=["procedures"])
    def get_procedure(procedure_id: str, ns: str = Tenant, vectors: bool = False) -> dict[str, Any]:
        return dump_procedure(svc.procedure(ns, procedure_id), vectors)

    @app.get("/v1/procedures/{procedure_id}/history", tags=["procedures"])
    def history(procedure_id: str, ns: str = Tenant, vectors: bool = False) -> list[dict[str, Any]]:
        return [dump_procedure(p, vectors) for p in svc.history(ns, procedure_id)]

    @app.post("/v1/procedures/{procedure_id}/retire", tags=["procedures"])
    def retire(procedure_id: str, ns: str = Tenant) -> dict[str, Any]:
        return dump_procedure(svc.retire(ns, procedure_id))

    @app.post("/v1/skills", status_code=201, response_model=SkillStarted, tags=["skills"])
    def skill_start(body: SkillStartRequest, ns: str = Tenant) -> dict[str, Any]:
        """A runnable skill for a task in an environment you step yourself: a session id,
        the compiled program, its binding and (given the first observation) the first
        action. 404 ``no_skill`` when no stored template matches the task. Sessions live
        in the server's memory (a restart forgets them) and end after an idle timeout."""
        return svc.skill_start(ns, **body.model_dump())

    @app.post("/v1/skills/{session_id}/step", response_model=SkillState, tags=["skills"])
    def skill_step(session_id: str, body: SkillStepRequest, ns: str = Tenant) -> dict[str, Any]:
        """Send what the last action led to; get the next action, or null and why the
        skill stopped. With ``done`` (or ``won``) the outcome is counted and the session
        ends."""
        return svc.skill_step(ns, session_id, **body.model_dump())

    @app.post("/v1/skills/{session_id}/finish", response_model=SkillState, tags=["skills"])
    def skill_finish(session_id: str, body: SkillFinishRequest, ns: str = Tenant) -> dict[str, Any]:
        """Count the episode's outcome on the skill's procedures and end the session."""
        return svc.skill_finish(ns, session_id, success=body.success)

    @app.get("/v1/export", tags=["procedures"], response_class=StreamingResponse)
    def export(ns: str = Tenant) -> StreamingResponse:
        """The namespace's procedures (with vectors), their earlier versions and its
        trajectories as JSON lines: the format ``memp memory import`` reads."""
        return StreamingResponse(svc.export_lines(ns), media_type="application/x-ndjson")

    @app.post("/v1/import", tags=["procedures"])
    async def import_(request: Request, ns: str = Tenant, replace: bool = False) -> dict[str, int]:
        """JSON lines from ``/v1/export`` into this namespace (one transaction)."""
        raw = await request.body()
        return {"imported": await run_in_threadpool(svc.import_lines, ns, raw, replace=replace)}

    return app


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(app: Any, *, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread; yields its base URL.

    For notebooks, benchmarks and tests: the real server, without a subprocess.
    """
    import time

    import uvicorn

    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"memp-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise StoreError(f"the server on {host}:{port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory memp.server.http:app_from_env``."""
    return create_app(
        os.environ.get("MEMP_DB", "memp.db"),
        embedder=os.environ.get("MEMP_EMBEDDER"),
        llm=os.environ.get("MEMP_LLM") or None,
    )


@contextmanager
def serving(
    db: str, *, embedder: str = "hash", llm: str = "none", args: Sequence[str] = ()
) -> Iterator[str]:
    """Run ``memp serve`` in a subprocess until it answers /healthz; yields its base URL.

    A separate process, so load generated in this one measures the server honestly.
    """
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "memp", "serve", "--db", db, "--port", str(port)]
    cmd += ["--embedder", embedder, "--llm", llm, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise StoreError(f"memp serve did not start: {err}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
