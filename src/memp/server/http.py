"""The memory service: an HTTP API over :class:`memp.memory.Memory`.

Every route under ``/v1`` needs ``Authorization: Bearer <key>``; the key decides
the namespace, so a caller never names one and cannot reach another tenant's data.
Ids are per namespace as well: another tenant's id is unknown here, and reusing it
makes a record of the caller's own (no answer reveals that it exists elsewhere).
Errors are JSON: ``{"error": {"code": ..., "message": ..., "details": ...}}``.
"""

from __future__ import annotations

import json
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
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import memp
from memp.errors import (
    BackendError,
    DimensionMismatch,
    EmbedderMismatch,
    InvalidInput,
    MempError,
    MissingData,
    MissingDependency,
    NotFound,
    StoreError,
    UnknownOption,
    public_message,
)
from memp.store.keys import KeyStore, keys_for
from memp.types import Outcome, Procedure, ProcedureStatus, RetrievalHit, Trajectory

DEFAULT_MAX_BODY = 4 * 1024 * 1024
_VECTORS = {"embedding", "key_embedding", "fact_embeddings"}


# ----------------------------------------------------------------------- models
KEEP_FAILED = (
    "Build a failed trajectory too: it is kept as a failed attempt, rendered apart from "
    "the procedures that worked (by default a failed trajectory is not built)."
)


class _Body(BaseModel):
    # Unknown fields are rejected: a misspelt option must not be silently ignored.
    model_config = ConfigDict(extra="forbid")


class RecordRequest(_Body):
    trajectory: Trajectory
    build: Literal["trajectory", "script", "proceduralization"] | None = Field(
        None,
        description="Also build and store a procedure from it with this strategy (not from "
        "a failed trajectory unless keep_failed).",
    )
    keep_failed: bool = Field(False, description=KEEP_FAILED)


class BuildRequest(_Body):
    trajectory: Trajectory
    strategy: str = "proceduralization"
    task_key: str | None = Field(None, description="The task with entities abstracted.")
    store: bool = Field(True, description="Store the procedure (add) or only return it (build).")
    keep_failed: bool = Field(False, description=KEEP_FAILED)


class ProcedureRequest(_Body):
    procedure: Procedure


class RetrieveRequest(_Body):
    task: str = Field(min_length=1)
    strategy: str = "query"
    k: int = Field(3, ge=1, le=100)
    min_score: float = 0.0
    budget_tokens: int | None = Field(None, ge=1)
    environment: str | None = None
    task_key: str | None = None


class RetrieveResponse(BaseModel):
    hits: list[RetrievalHit]
    rendered: str = Field(description="The hits as a prompt block of guidelines.")


class ReportRequest(_Body):
    procedure_ids: list[str] = Field(min_length=1, max_length=1000)
    success: bool


class ReportResponse(BaseModel):
    reported: int


class UpdateRequest(_Body):
    outcomes: list[Outcome] = Field(min_length=1)
    strategy: str = "validation"
    options: dict[str, Any] = Field(default_factory=dict)


class MergeRequest(_Body):
    threshold: float = Field(default=0.95, gt=0.0, le=1.0)


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# ------------------------------------------------------------------- plumbing
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
        payload = _error_payload(
            "payload_too_large",
            f"request body is larger than {self.limit} bytes; send less per request "
            "(e.g. one trajectory at a time) or start the server with a larger --max-body",
        )
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


def _error_payload(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _error(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(_error_payload(code, message, details), status_code=status, headers=headers)


def _public(message: str, svc: Any = None) -> str:
    """An error message fit for a client: no filesystem paths, no URL credentials."""
    store = getattr(svc, "store", None)
    names = {getattr(svc, "db", None), getattr(store, "path", None), getattr(store, "_where", None)}
    return public_message(message, [n for n in names if isinstance(n, str | Path)])


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


# Which HTTP status each memp error becomes.
_STATUS: list[tuple[type[Exception], int, str]] = [
    (NotFound, 404, "not_found"),
    (UnknownOption, 422, "unknown_option"),
    (EmbedderMismatch, 409, "embedder_mismatch"),
    (DimensionMismatch, 409, "dimension_mismatch"),
    (InvalidInput, 422, "invalid_input"),
    (MissingDependency, 501, "missing_dependency"),
    (MissingData, 501, "missing_data"),
    (BackendError, 502, "backend_error"),
    (StoreError, 503, "store_error"),
    (MempError, 500, "memp_error"),
]


def _dump(p: Procedure, vectors: bool) -> dict[str, Any]:
    return p.model_dump(mode="json", exclude=None if vectors else _VECTORS)


class NoLLM:
    """Stands in when the server runs without an LLM: a clear error, not a model download."""

    name = "none"

    def complete(self, messages: Any, **kwargs: Any) -> Any:
        raise InvalidInput(
            "this strategy needs an LLM and the server was started with --llm none; use "
            "build strategy 'trajectory' or restart the server with --llm <spec>"
        )


class LazyLLM:
    """Loads the LLM a spec names on first use: serving retrieval never needs it."""

    def __init__(self, spec: str) -> None:
        self.name = spec
        self._llm: Any = None
        self._lock = threading.Lock()

    def complete(self, messages: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._llm is None:
                from memp.llm import make_llm

                self._llm = make_llm(self.name)
                self.name = getattr(self._llm, "name", self.name)
        return self._llm.complete(messages, **kwargs)


class Service:
    """The state behind the app: one store, one key store, one Memory per namespace."""

    def __init__(
        self,
        db: str | Path,
        *,
        embedder: Any = None,
        llm: Any = None,
        store: Any = None,
        keys: KeyStore | None = None,
    ) -> None:
        from memp.store import open_store

        self.db = db
        self.store = store if store is not None else open_store(db)
        self.keys = keys if keys is not None else keys_for(self.store, db)
        self._embedder_spec, self._llm_spec = embedder, llm
        self._embedder: Any = None
        self._llm: Any = None
        self._memories: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _resolve(self) -> None:
        if self._embedder is None:
            spec = self._embedder_spec
            if spec is None or isinstance(spec, str):
                from memp.embed import make_embedder

                spec = make_embedder(spec)
            self._embedder = spec
        if self._llm is None:
            spec = self._llm_spec
            if spec is None or spec == "none":
                self._llm = NoLLM()
            else:
                self._llm = LazyLLM(spec) if isinstance(spec, str) else spec

    def memory(self, namespace: str) -> Any:
        with self._lock:
            mem = self._memories.get(namespace)
            if mem is None:
                from memp.memory import Memory

                self._resolve()
                mem = Memory(
                    self.store,
                    llm=self._llm,
                    embedder=self._embedder,
                    namespace=namespace,
                    # Without an LLM, key facts come from keywords instead of an error.
                    facts="keywords" if isinstance(self._llm, NoLLM) else "auto",
                )
                self._memories[namespace] = mem
            return mem

    def record(
        self,
        namespace: str,
        trajectory: Trajectory,
        build: str | None,
        *,
        keep_failed: bool = False,
    ) -> tuple[Procedure | None, str | None]:
        """Store an episode and, if ``build`` names a strategy, a procedure from it when
        the build rule allows (:func:`memp.build.builds`); returns (procedure, why not)."""
        from memp.build import builds, not_built_reason

        m = self.memory(namespace)
        if build and builds(trajectory, keep_failed=keep_failed):
            return m.add(trajectory, strategy=build, keep_failed=keep_failed), None
        m.record(trajectory)
        return None, not_built_reason(trajectory) if build else None

    def close(self) -> None:
        self.keys.close()
        self.store.close()


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
    an LLM answer 501). With ``auth=False`` every request uses ``namespace``: only for
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
        },
    )
    app.state.service = svc
    app.add_middleware(BodyLimit, limit=max_body)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(MempError)
    async def _memp_error(_: Request, exc: MempError) -> JSONResponse:
        for cls, status, code in _STATUS:
            if isinstance(exc, cls):
                details = None
                if isinstance(exc, UnknownOption):
                    details = {"kind": exc.kind, "name": exc.name, "valid": exc.valid}
                return _error(status, code, _public(str(exc), svc), details)
        return _error(500, "memp_error", _public(str(exc), svc))  # pragma: no cover

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        details = [
            {"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")}
            for e in errors
        ]
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "malformed_json", "the request body is not valid JSON", details)
        unknown = [
            ".".join(map(str, e["loc"][1:])) for e in errors if e.get("type") == "extra_forbidden"
        ]
        if unknown:
            msg = f"unknown field(s): {', '.join(unknown)}; see /docs for the accepted fields"
            return _error(422, "unknown_field", msg, details)
        return _error(
            422, "invalid_request", "the request does not match the schema; see details", details
        )

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        # A bug or an unreachable database: say so in the same shape, without internals.
        import logging

        logging.getLogger("memp.server").exception("unhandled error")
        return _error(
            500, "internal_error", f"internal error ({type(exc).__name__}); see server log"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    def tenant(request: Request) -> str:
        if not auth:
            return namespace
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "unauthorized",
                "missing API key: send `Authorization: Bearer <key>` (create one with `memp keys create`)",
                {"WWW-Authenticate": "Bearer"},
            )
        key = svc.keys.verify(token)
        if key is None:
            raise ApiError(
                401, "unauthorized", "invalid or revoked API key", {"WWW-Authenticate": "Bearer"}
            )
        return key.namespace

    Tenant = Depends(tenant)

    def mem(ns: str) -> Any:
        return svc.memory(ns)

    def own(ns: str, procedure_ids: list[str]) -> None:
        # Check every id before any write, so a bad id changes nothing.
        for pid in dict.fromkeys(procedure_ids):
            svc.store.get(pid, namespace=ns)

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
            "procedure": None if proc is None else _dump(proc, False),
            "skipped": skipped,
        }

    @app.get("/v1/trajectories", tags=["memory"])
    def list_trajectories(
        ns: str = Tenant,
        environment: str | None = None,
        limit: int | None = Query(None, ge=1, le=10000),
        offset: int = Query(0, ge=0),
    ) -> list[Trajectory]:
        return svc.store.list_trajectories(
            namespace=ns, environment=environment, limit=limit, offset=offset
        )

    @app.get("/v1/trajectories/{trajectory_id}", tags=["memory"])
    def get_trajectory(trajectory_id: str, ns: str = Tenant) -> Trajectory:
        return svc.store.get_trajectory(trajectory_id, namespace=ns)

    @app.post("/v1/build", status_code=201, tags=["memory"])
    def build(body: BuildRequest, ns: str = Tenant) -> dict[str, Any]:
        """Build a procedure from a trajectory; stored unless ``store`` is false. A failed
        trajectory is refused (422) unless ``keep_failed``."""
        m = mem(ns)
        proc = (m.add if body.store else m.build)(
            body.trajectory,
            strategy=body.strategy,
            task_key=body.task_key,
            keep_failed=body.keep_failed,
        )
        return _dump(proc, False)

    @app.post("/v1/procedures", status_code=201, tags=["procedures"])
    def add_procedure(body: ProcedureRequest, ns: str = Tenant) -> dict[str, Any]:
        p = body.procedure
        if "namespace" in p.model_fields_set and p.namespace != ns:
            raise ApiError(403, "forbidden", f"this key writes only namespace {ns!r}")
        return _dump(mem(ns).add_procedure(p.model_copy(update={"namespace": ns})), False)

    @app.post("/v1/retrieve", response_model=RetrieveResponse, tags=["memory"])
    def retrieve(body: RetrieveRequest, ns: str = Tenant, vectors: bool = False) -> dict[str, Any]:
        m = mem(ns)
        hits = m.retrieve(
            body.task,
            strategy=body.strategy,
            k=body.k,
            min_score=body.min_score,
            budget_tokens=body.budget_tokens,
            environment=body.environment,
            task_key=body.task_key,
        )
        return {
            "hits": [
                {**h.model_dump(mode="json"), "procedure": _dump(h.procedure, vectors)}
                for h in hits
            ],
            "rendered": m.render(hits),
        }

    @app.post("/v1/report", response_model=ReportResponse, tags=["memory"])
    def report(body: ReportRequest, ns: str = Tenant) -> ReportResponse:
        """Report whether retrieved procedures worked (usage counters)."""
        own(ns, body.procedure_ids)
        mem(ns).report(body.procedure_ids, success=body.success)
        return ReportResponse(reported=len(body.procedure_ids))

    @app.post("/v1/update", tags=["memory"])
    def update(body: UpdateRequest, ns: str = Tenant) -> Any:
        """Apply an update strategy to a group of outcomes."""
        for o in body.outcomes:
            own(ns, [*o.used, *(o.followed or [])])
        import inspect

        from memp.update import apply_update

        valid = [
            n
            for n, prm in inspect.signature(apply_update).parameters.items()
            if prm.kind == prm.KEYWORD_ONLY and n != "strategy"
        ]
        unknown = sorted(set(body.options) - set(valid))
        if unknown:
            raise ApiError(
                422,
                "unknown_field",
                f"unknown update option(s): {', '.join(unknown)}; valid: {', '.join(valid)}",
            )
        result = mem(ns).update(body.outcomes, strategy=body.strategy, **body.options)
        return result.model_dump(mode="json") if isinstance(result, BaseModel) else result

    @app.post("/v1/merge", tags=["memory"])
    def merge(body: MergeRequest, ns: str = Tenant) -> Any:
        """Consolidate near-duplicate procedures of the namespace (cosine >= threshold)."""
        return mem(ns).merge_duplicates(body.threshold).model_dump(mode="json")

    @app.get("/v1/procedures", tags=["procedures"])
    def list_procedures(
        ns: str = Tenant,
        environment: str | None = None,
        status: ProcedureStatus | Literal["all"] = ProcedureStatus.ACTIVE,
        limit: int | None = Query(None, ge=1, le=10000),
        offset: int = Query(0, ge=0),
        vectors: bool = False,
    ) -> list[dict[str, Any]]:
        procs = svc.store.list(
            namespace=ns,
            environment=environment,
            status=None if status == "all" else status,
            limit=limit,
            offset=offset,
        )
        return [_dump(p, vectors) for p in procs]

    @app.get("/v1/procedures/count", tags=["procedures"])
    def count_procedures(
        ns: str = Tenant,
        environment: str | None = None,
        status: ProcedureStatus | Literal["all"] = ProcedureStatus.ACTIVE,
    ) -> dict[str, int]:
        n = svc.store.count(
            namespace=ns, environment=environment, status=None if status == "all" else status
        )
        return {"count": n}

    @app.get("/v1/procedures/{procedure_id}", tags=["procedures"])
    def get_procedure(procedure_id: str, ns: str = Tenant, vectors: bool = False) -> dict[str, Any]:
        return _dump(svc.store.get(procedure_id, namespace=ns), vectors)

    @app.get("/v1/procedures/{procedure_id}/history", tags=["procedures"])
    def history(procedure_id: str, ns: str = Tenant, vectors: bool = False) -> list[dict[str, Any]]:
        return [_dump(p, vectors) for p in svc.store.history(procedure_id, namespace=ns)]

    @app.post("/v1/procedures/{procedure_id}/retire", tags=["procedures"])
    def retire(procedure_id: str, ns: str = Tenant) -> dict[str, Any]:
        svc.store.get(procedure_id, namespace=ns)
        mem(ns).retire(procedure_id)
        return _dump(svc.store.get(procedure_id, namespace=ns), False)

    @app.get("/v1/export", tags=["procedures"], response_class=StreamingResponse)
    def export(ns: str = Tenant) -> StreamingResponse:
        """The namespace's procedures (with vectors), their earlier versions and its
        trajectories as JSON lines: the format ``memp memory import`` reads."""

        def lines() -> Iterator[str]:
            for rec in svc.store.export_records(namespace=ns):
                yield json.dumps(rec, default=str) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.post("/v1/import", tags=["procedures"])
    async def import_(request: Request, ns: str = Tenant, replace: bool = False) -> dict[str, int]:
        """JSON lines from ``/v1/export`` into this namespace (one transaction)."""
        raw = await request.body()
        records = []
        for i, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ApiError(400, "malformed_json", f"line {i} is not valid JSON: {exc}") from exc
            if not isinstance(rec, dict) or not isinstance(rec.get("record"), dict):
                raise ApiError(422, "invalid_input", f"line {i} is not an exported record")
            owner = (
                rec.get("namespace")
                if rec.get("type") == "trajectory"
                else rec["record"].get("namespace")
            )
            if (owner or "default") != ns:
                raise ApiError(
                    403,
                    "forbidden",
                    f"line {i} belongs to namespace {owner!r}; this key writes only {ns!r}",
                )
            records.append(rec)
        from starlette.concurrency import run_in_threadpool

        # The store checks the namespace again: the import can only write the caller's.
        n = await run_in_threadpool(
            svc.store.import_records, records, replace=replace, namespace=ns
        )
        return {"imported": n}

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
