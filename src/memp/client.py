"""A Python client for the memory service, with the surface of :class:`memp.memory.Memory`.

    from memp.client import Client
    memory = Client("http://127.0.0.1:8000", api_key="memp_...")
    hits = memory.retrieve("put a clean apple in the fridge", k=3)
    prompt_block = memory.render(hits)

Errors come back as the same memp exceptions the local API raises (NotFound,
InvalidInput, ...), with the server's message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from memp.errors import (
    BackendError,
    DimensionMismatch,
    EmbedderMismatch,
    InvalidInput,
    MempError,
    NotFound,
    StoreError,
    UnknownOption,
)
from memp.types import Outcome, Procedure, ProcedureStatus, RetrievalHit, Trajectory


class AuthError(MempError, PermissionError):
    """The server refused the API key (missing, invalid, revoked, or wrong namespace)."""


class PayloadTooLarge(InvalidInput):
    pass


_ERRORS: dict[str, type[MempError]] = {
    "not_found": NotFound,
    "unauthorized": AuthError,
    "forbidden": AuthError,
    "dimension_mismatch": DimensionMismatch,
    "embedder_mismatch": EmbedderMismatch,
    "payload_too_large": PayloadTooLarge,
    "backend_error": BackendError,
    "store_error": StoreError,
}


def _raise(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        err = response.json()["error"]
        code, message = err.get("code", "error"), err.get("message", response.text)
        details = err.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "http_error", response.text, None
    if details and code in ("invalid_request", "unknown_field"):
        message += ": " + "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details)
    if code == "unknown_option" and isinstance(details, dict):
        exc: Exception = UnknownOption(details["kind"], details["name"], details["valid"])
    elif code == "missing_dependency":
        exc = MempError(message)
    elif code in _ERRORS:
        exc = _ERRORS[code](message)
    elif response.status_code in (400, 422):
        exc = InvalidInput(message)
    else:
        exc = MempError(f"server answered {response.status_code}: {message}")
    raise exc


class Client:
    """The memory service over HTTP. ``api_key`` defaults to ``$MEMP_API_KEY``."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        key = api_key or os.environ.get("MEMP_API_KEY")
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self._http = http or httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    # -- plumbing
    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise BackendError(f"cannot reach the memory service at {self.url}: {exc}") from exc
        _raise(r)
        return r.json() if r.content else None

    @property
    def namespace(self) -> str:
        return self._call("GET", "/v1/whoami")["namespace"]

    # -- the Memory surface
    def record(self, trajectory: Trajectory) -> None:
        self._call(
            "POST", "/v1/trajectories", json={"trajectory": trajectory.model_dump(mode="json")}
        )

    def build(
        self,
        trajectory: Trajectory,
        *,
        strategy: str = "proceduralization",
        task_key: str | None = None,
        keep_failed: bool = False,
    ) -> Procedure:
        """Build a procedure on the server without storing it."""
        body = {
            "trajectory": trajectory.model_dump(mode="json"),
            "strategy": strategy,
            "task_key": task_key,
            "store": False,
            "keep_failed": keep_failed,
        }
        return Procedure.model_validate(self._call("POST", "/v1/build", json=body))

    def add(
        self,
        trajectory: Trajectory,
        *,
        strategy: str = "proceduralization",
        task_key: str | None = None,
        keep_failed: bool = False,
    ) -> Procedure:
        """Build a procedure from ``trajectory`` and store both (a failed trajectory only
        with ``keep_failed``, see :func:`memp.build.builds`)."""
        body = {
            "trajectory": trajectory.model_dump(mode="json"),
            "strategy": strategy,
            "task_key": task_key,
            "keep_failed": keep_failed,
        }
        return Procedure.model_validate(self._call("POST", "/v1/build", json=body))

    def add_procedure(self, procedure: Procedure) -> Procedure:
        data = procedure.model_dump(mode="json", exclude={"namespace"})
        return Procedure.model_validate(
            self._call("POST", "/v1/procedures", json={"procedure": data})
        )

    def retrieve(
        self,
        task: str,
        *,
        strategy: str = "query",
        k: int = 3,
        min_score: float = 0.0,
        budget_tokens: int | None = None,
        environment: str | None = None,
        task_key: str | None = None,
    ) -> list[RetrievalHit]:
        body = {
            "task": task,
            "strategy": strategy,
            "k": k,
            "min_score": min_score,
            "budget_tokens": budget_tokens,
            "environment": environment,
            "task_key": task_key,
        }
        data = self._call("POST", "/v1/retrieve", json=body)
        return [RetrievalHit.model_validate(h) for h in data["hits"]]

    def render(self, hits: Sequence[RetrievalHit]) -> str:
        from memp.retrieve import render

        return render(hits)

    def update(
        self, outcomes: Sequence[Outcome], *, strategy: str = "validation", **options: Any
    ) -> Any:
        from memp.update import UpdateReport

        body = {
            "outcomes": [o.model_dump(mode="json") for o in outcomes],
            "strategy": strategy,
            "options": options,
        }
        return UpdateReport.model_validate(self._call("POST", "/v1/update", json=body))

    def merge_duplicates(self, threshold: float = 0.95) -> Any:
        from memp.update import UpdateReport

        data = self._call("POST", "/v1/merge", json={"threshold": threshold})
        return UpdateReport.model_validate(data)

    def report(self, procedure_ids: Sequence[str], *, success: bool) -> None:
        ids = list(procedure_ids)
        if ids:
            self._call("POST", "/v1/report", json={"procedure_ids": ids, "success": success})

    def get(self, procedure_id: str) -> Procedure:
        return Procedure.model_validate(self._call("GET", f"/v1/procedures/{procedure_id}"))

    def list(
        self,
        *,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Procedure]:
        params: dict[str, Any] = {
            "status": "all" if status is None else ProcedureStatus(status).value
        }
        if environment is not None:
            params["environment"] = environment
        if limit is not None:
            params["limit"] = limit
        if offset:
            params["offset"] = offset
        return [
            Procedure.model_validate(p) for p in self._call("GET", "/v1/procedures", params=params)
        ]

    def count(
        self,
        *,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
    ) -> int:
        params: dict[str, Any] = {
            "status": "all" if status is None else ProcedureStatus(status).value
        }
        if environment is not None:
            params["environment"] = environment
        return int(self._call("GET", "/v1/procedures/count", params=params)["count"])

    def history(self, procedure_id: str) -> list[Procedure]:
        data = self._call("GET", f"/v1/procedures/{procedure_id}/history")
        return [Procedure.model_validate(p) for p in data]

    def retire(self, procedure_id: str) -> Procedure:
        return Procedure.model_validate(self._call("POST", f"/v1/procedures/{procedure_id}/retire"))

    def get_trajectory(self, trajectory_id: str) -> Trajectory:
        return Trajectory.model_validate(self._call("GET", f"/v1/trajectories/{trajectory_id}"))

    def list_trajectories(
        self, *, environment: str | None = None, limit: int | None = None
    ) -> list[Trajectory]:
        params: dict[str, Any] = {}
        if environment is not None:
            params["environment"] = environment
        if limit is not None:
            params["limit"] = limit
        return [
            Trajectory.model_validate(t)
            for t in self._call("GET", "/v1/trajectories", params=params)
        ]

    def export_jsonl(self, path: str | Path) -> int:
        """Write the namespace's records as JSON lines (the format Memory.import_jsonl reads)."""
        n = 0
        with self._http.stream("GET", "/v1/export") as r:
            if not r.is_success:
                r.read()
                _raise(r)
            with Path(path).open("w", encoding="utf-8") as f:
                for line in r.iter_lines():
                    if line.strip():
                        json.loads(line)  # fail loudly on a truncated stream
                        f.write(line + "\n")
                        n += 1
        return n

    def import_jsonl(self, path: str | Path, *, replace: bool = False) -> int:
        """Send an export file to the server (every record must be of this key's namespace)."""
        data = Path(path).read_bytes()
        params = {"replace": "true"} if replace else {}
        headers = {"content-type": "application/x-ndjson"}
        return int(
            self._call("POST", "/v1/import", content=data, params=params, headers=headers)[
                "imported"
            ]
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


MempClient = Client

__all__ = ["AuthError", "Client", "MempClient", "PayloadTooLarge"]
