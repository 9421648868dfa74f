"""A Python client for the memory service: :class:`memp.api.MemoryAPI` over HTTP.

    from memp.client import Client
    memory = Client("http://127.0.0.1:8000", api_key="memp_...")
    hits = memory.retrieve("put a clean apple in the fridge", k=3)
    prompt_block = memory.render(hits)

Errors come back as the same memp exceptions the local API raises (NotFound,
InvalidInput, ...), with the server's message.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from memp.api import (
    BaseMemory,
    MemoryAPI,
    check_build,
    check_retrieve,
    check_skill,
    check_update_options,
    takes,
)
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
from memp.skills.handle import NoSkill, Skill
from memp.types import Procedure, ProcedureStatus, Program, RetrievalHit, Trajectory

if TYPE_CHECKING:
    from memp.update import UpdateReport


class AuthError(MempError, PermissionError):
    """The server refused the API key (missing, invalid, revoked, or wrong namespace)."""


class PayloadTooLarge(InvalidInput):
    pass


_ERRORS: dict[str, type[MempError]] = {
    "no_skill": NoSkill,
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


class Client(BaseMemory):
    """The memory service over HTTP. ``api_key`` defaults to ``$MEMP_API_KEY``.

    Every :class:`~memp.api.MemoryAPI` method takes its signature from the protocol
    (:func:`memp.api.takes`); each body here only says which request it is.
    """

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

    def _procedure(self, method: str, path: str, **kw: Any) -> Procedure:
        return Procedure.model_validate(self._call(method, path, **kw))

    def _procedures(self, path: str, **kw: Any) -> list[Procedure]:
        return [Procedure.model_validate(p) for p in self._call("GET", path, **kw)]

    @property
    def namespace(self) -> str:
        return self._call("GET", "/v1/whoami")["namespace"]

    # -- build
    @takes(MemoryAPI.build)
    def build(self, a: dict[str, Any]) -> Procedure:
        return self._build(a, store=False)

    @takes(MemoryAPI.record)
    def record(self, a: dict[str, Any]) -> None:
        self._call("POST", "/v1/trajectories", json={"trajectory": _json(a["trajectory"])})

    @takes(MemoryAPI.add)
    def add(self, a: dict[str, Any]) -> Procedure:
        return self._build(a, store=True)

    def _build(self, a: dict[str, Any], *, store: bool) -> Procedure:
        check_build(a["trajectory"], a["strategy"])
        local = a.pop("env"), a.pop("semantics")  # objects of this process
        if any(x is not None for x in local):
            raise InvalidInput(
                "an environment cannot be sent over HTTP: build executable procedures "
                "with memp.Memory in the process that has the environment, then export "
                "them (Memory.export_jsonl) or add them with Client.add_procedure"
            )
        body = {**a, "trajectory": _json(a["trajectory"]), "store": store}
        return self._procedure("POST", "/v1/build", json=body)

    @takes(MemoryAPI.add_procedure)
    def add_procedure(self, a: dict[str, Any]) -> Procedure:
        # The key decides the namespace: the procedure is sent without one.
        data = a["procedure"].model_dump(mode="json", exclude={"namespace"})
        return self._procedure("POST", "/v1/procedures", json={"procedure": data})

    # -- retrieve
    @takes(MemoryAPI.retrieve)
    def retrieve(self, a: dict[str, Any]) -> list[RetrievalHit]:
        check_retrieve(a["strategy"], a["k"], a["budget_tokens"])
        data = self._call("POST", "/v1/retrieve", json=a)
        return [RetrievalHit.model_validate(h) for h in data["hits"]]

    # -- execute
    @takes(MemoryAPI.skill)
    def skill(self, a: dict[str, Any]) -> RemoteSkill | None:
        """A skill the service steps for this process's environment (a
        :class:`RemoteSkill`), or None when no stored template matches ``task``. Only the
        environment's name is sent: the service knows what the actions of each registered
        environment mean (``semantics`` stays here, unused)."""
        task, env = a["task"], a["env"]
        check_skill(task)
        environment = a["environment"] or getattr(env, "name", None)
        if not environment:
            raise InvalidInput(
                "skill() needs the environment: pass env=<a memp.envs environment> or "
                "environment=<its registered name>"
            )
        config = a["config"]
        body = {
            "task": task,
            "environment": environment,
            "config": None if config is None else dataclasses.asdict(config),
            "handover_when_stuck": a["handover_when_stuck"],
            "track": a["track"],
            "adapt": a["adapt"],
            "admissible": None if a["admissible"] is None else list(a["admissible"]),
        }
        try:
            started = self._call("POST", "/v1/skills", json=body)
        except NoSkill:
            return None
        return RemoteSkill(self, started)

    # -- update
    @takes(MemoryAPI.update)
    def update(self, a: dict[str, Any]) -> UpdateReport:
        from memp.update import UpdateReport

        check_update_options(a["options"])
        body = {**a, "outcomes": [_json(o) for o in a["outcomes"]]}
        return UpdateReport.model_validate(self._call("POST", "/v1/update", json=body))

    @takes(MemoryAPI.report)
    def report(self, a: dict[str, Any]) -> None:
        ids = list(a["procedure_ids"])
        if ids:
            self._call("POST", "/v1/report", json={"procedure_ids": ids, "success": a["success"]})

    @takes(MemoryAPI.merge_duplicates)
    def merge_duplicates(self, a: dict[str, Any]) -> UpdateReport:
        from memp.update import UpdateReport

        return UpdateReport.model_validate(self._call("POST", "/v1/merge", json=a))

    # -- inspect
    @takes(MemoryAPI.get)
    def get(self, a: dict[str, Any]) -> Procedure:
        return self._procedure("GET", f"/v1/procedures/{a['procedure_id']}")

    @takes(MemoryAPI.list)
    def list(self, a: dict[str, Any]) -> list[Procedure]:
        return self._procedures("/v1/procedures", params=_query(a))

    @takes(MemoryAPI.count)
    def count(self, a: dict[str, Any]) -> int:
        return int(self._call("GET", "/v1/procedures/count", params=_query(a))["count"])

    @takes(MemoryAPI.history)
    def history(self, a: dict[str, Any]) -> list[Procedure]:
        return self._procedures(f"/v1/procedures/{a['procedure_id']}/history")

    @takes(MemoryAPI.retire)
    def retire(self, a: dict[str, Any]) -> Procedure:
        return self._procedure("POST", f"/v1/procedures/{a['procedure_id']}/retire")

    @takes(MemoryAPI.get_trajectory)
    def get_trajectory(self, a: dict[str, Any]) -> Trajectory:
        return Trajectory.model_validate(
            self._call("GET", f"/v1/trajectories/{a['trajectory_id']}")
        )

    @takes(MemoryAPI.list_trajectories)
    def list_trajectories(self, a: dict[str, Any]) -> list[Trajectory]:
        data = self._call("GET", "/v1/trajectories", params=_query(a))
        return [Trajectory.model_validate(t) for t in data]

    # -- export / import
    @takes(MemoryAPI.export_jsonl)
    def export_jsonl(self, a: dict[str, Any]) -> int:
        """Write the namespace's records as JSON lines (the format Memory.import_jsonl reads)."""
        n = 0
        with self._http.stream("GET", "/v1/export") as r:
            if not r.is_success:
                r.read()
                _raise(r)
            with Path(a["path"]).open("w", encoding="utf-8") as f:
                for line in r.iter_lines():
                    if line.strip():
                        json.loads(line)  # fail loudly on a truncated stream
                        f.write(line + "\n")
                        n += 1
        return n

    @takes(MemoryAPI.import_jsonl)
    def import_jsonl(self, a: dict[str, Any]) -> int:
        """Send an export file to the server (every record must be of this key's namespace)."""
        data = Path(a["path"]).read_bytes()
        params = {"replace": "true"} if a["replace"] else {}
        headers = {"content-type": "application/x-ndjson"}
        answer = self._call("POST", "/v1/import", content=data, params=params, headers=headers)
        return int(answer["imported"])

    def close(self) -> None:
        self._http.close()


class RemoteSkill(Skill):
    """A skill stepped by the memory service (:meth:`Client.skill`): the same surface as
    the local :class:`~memp.skills.handle.LocalSkill` (``next_action``, ``finish``,
    ``run``), each step one request. The session lives in the server's memory and ends
    with :meth:`finish` (or after the server's idle timeout)."""

    def __init__(self, client: Client, started: dict[str, Any]) -> None:
        super().__init__(
            task=started["task"],
            procedure_ids=started["procedure_ids"],
            notes=started["notes"],
            adapted=(started.get("notes") or {}).get("adapted"),
        )
        self.session_id: str = started["session_id"]
        self.environment: str = started["environment"]
        self._client = client
        self._program = Program.model_validate(started["program"])
        self._binding: dict[str, str] = dict(started["binding"])
        self._pointer = int(started["pointer"])

    @property
    def program(self) -> Program:
        return self._program

    @property
    def binding(self) -> dict[str, str]:
        return dict(self._binding)

    @property
    def pointer(self) -> int:
        return self._pointer

    def _send(self, what: str, body: dict[str, Any]) -> dict[str, Any]:
        state = self._client._call("POST", f"/v1/skills/{self.session_id}/{what}", json=body)
        self.steps_taken, self._pointer = int(state["steps_taken"]), int(state["pointer"])
        self.last_info = dict(state.get("info") or {})
        self.stopped = state.get("stopped")
        return state

    def next_action(self, observation: str, admissible: Sequence[str] | None) -> str | None:
        if self.stopped is not None:
            return None
        self._started = True
        adm = None if admissible is None else list(admissible)
        return self._send("step", {"observation": observation, "admissible": adm})["action"]

    def _count(self, success: bool) -> None:
        self._send("finish", {"success": success})


def _json(record: Any) -> dict[str, Any]:
    return record.model_dump(mode="json")


def _query(a: dict[str, Any]) -> dict[str, Any]:
    """Query parameters from list arguments: unset ones left out, ``status=None`` (every
    status) sent as ``all``."""
    params = {k: v for k, v in a.items() if v is not None and k != "status"}
    if "status" in a:
        params["status"] = "all" if a["status"] is None else ProcedureStatus(a["status"]).value
    return params


MempClient = Client

__all__ = ["AuthError", "Client", "MempClient", "PayloadTooLarge", "RemoteSkill"]
