"""The memory service without its transport: what the HTTP API and the MCP server both run.

One store and one key store behind many tenants. A caller is a namespace, resolved from
its API key (:meth:`Service.authenticate`); every operation takes that namespace and acts
only within it, so neither transport can reach another tenant's data by forgetting a
check. Ids are per namespace as well: another tenant's id is unknown here, and reusing it
makes a record of the caller's own (no answer reveals that it exists elsewhere).
Failures become one :class:`Failure` (status, code, a message scrubbed of server paths)
that each transport only has to put into its own shape.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import Send

from memp.api import check_update_options
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
from memp.server.sessions import NoSkill, SkillSessions, TooManySessions
from memp.skills.handle import no_skill
from memp.store.keys import KeyStore, keys_for
from memp.types import Outcome, Procedure, RetrievalHit, Trajectory
from memp.update import UpdateReport

DEFAULT_MAX_BODY = 4 * 1024 * 1024

MISSING_KEY = (
    "missing API key: send `Authorization: Bearer <key>` (create one with `memp keys create`)"
)


class Refused(MempError):
    """A request the service itself turns down (auth, namespace, request format), with
    the status and code it answers with."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class Unauthorized(Refused):
    def __init__(self, message: str) -> None:
        super().__init__(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class Failure:
    """A failed call as a client sees it."""

    status: int
    code: str
    message: str
    details: Any = None
    headers: dict[str, str] | None = None

    def payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def too_large(limit: int) -> Failure:
    return Failure(
        413,
        "payload_too_large",
        f"request body is larger than {limit} bytes; send less per request "
        "(e.g. one trajectory at a time) or start the server with a larger --max-body",
    )


# Which status and code each memp error answers with (first match wins).
_STATUS: list[tuple[type[Exception], int, str]] = [
    (NoSkill, 404, "no_skill"),
    (NotFound, 404, "not_found"),
    (TooManySessions, 429, "too_many_sessions"),
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


async def send_failure(send: Send, failure: Failure) -> None:
    """Answer an HTTP request with ``failure`` straight from ASGI middleware: the body
    limit and the MCP key check refuse before any route runs."""
    data = json.dumps(failure.payload()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in (failure.headers or {}).items()]
    await send({"type": "http.response.start", "status": failure.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


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
    """The state behind both transports: one store, one key store, one Memory per
    namespace, and every operation a client can ask for, scoped to its namespace."""

    def __init__(
        self,
        db: str | Path,
        *,
        embedder: Any = None,
        llm: Any = None,
        store: Any = None,
        keys: KeyStore | None = None,
        sessions: SkillSessions | None = None,
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
        self.sessions = sessions if sessions is not None else SkillSessions()

    # -- backends -----------------------------------------------------------------

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

    def close(self) -> None:
        self.keys.close()
        self.store.close()

    # -- callers and their failures -----------------------------------------------

    def authenticate(self, authorization: str | None) -> str:
        """The namespace of the key in an ``Authorization: Bearer <key>`` header."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(MISSING_KEY)
        key = self.keys.verify(token)
        if key is None:
            raise Unauthorized("invalid or revoked API key")
        return key.namespace

    def public(self, message: str) -> str:
        """``message`` fit for a client: no filesystem paths, no URL credentials."""
        names = {self.db, getattr(self.store, "path", None), getattr(self.store, "_where", None)}
        return public_message(message, [n for n in names if isinstance(n, str | Path)])

    def failure(self, exc: MempError) -> Failure:
        if isinstance(exc, Refused):
            return Failure(exc.status, exc.code, exc.message, headers=exc.headers)
        details = None
        if isinstance(exc, UnknownOption):
            details = {"kind": exc.kind, "name": exc.name, "valid": exc.valid}
        status, code = next((s, c) for cls, s, c in _STATUS if isinstance(exc, cls))
        return Failure(status, code, self.public(str(exc)), details)

    # -- writes -------------------------------------------------------------------

    def own(self, namespace: str, procedure_ids: Sequence[str]) -> None:
        """Raise NotFound unless every id is a procedure of ``namespace``; checked before
        any write, so a bad id changes nothing."""
        for pid in dict.fromkeys(procedure_ids):
            self.store.get(pid, namespace=namespace)

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

    def build(
        self, namespace: str, trajectory: Trajectory, *, store: bool = True, **options: Any
    ) -> Procedure:
        """A procedure from ``trajectory``, stored (add) unless ``store`` is false."""
        m = self.memory(namespace)
        return (m.add if store else m.build)(trajectory, **options)

    def add_procedure(self, namespace: str, procedure: Procedure, *, named: bool) -> Procedure:
        """Store ``procedure`` in ``namespace``; ``named``: the caller set its namespace
        (refused when it is another)."""
        if named and procedure.namespace != namespace:
            raise Refused(403, "forbidden", f"this key writes only namespace {namespace!r}")
        p = procedure.model_copy(update={"namespace": namespace})
        return self.memory(namespace).add_procedure(p)

    def report(self, namespace: str, procedure_ids: Sequence[str], *, success: bool) -> int:
        self.own(namespace, procedure_ids)
        self.memory(namespace).report(procedure_ids, success=success)
        return len(procedure_ids)

    def update(
        self, namespace: str, outcomes: Sequence[Outcome], strategy: str, options: dict[str, Any]
    ) -> UpdateReport:
        for o in outcomes:
            self.own(namespace, [*o.used, *(o.followed or [])])
        try:
            check_update_options(options)
        except InvalidInput as exc:  # a field of the request: said as the schema's own
            raise Refused(422, "unknown_field", str(exc)) from None
        return self.memory(namespace).update(outcomes, strategy=strategy, **options)

    def merge(self, namespace: str, threshold: float) -> UpdateReport:
        return self.memory(namespace).merge_duplicates(threshold)

    def retire(self, namespace: str, procedure_id: str) -> Procedure:
        self.store.get(procedure_id, namespace=namespace)
        self.memory(namespace).retire(procedure_id)
        return self.store.get(procedure_id, namespace=namespace)

    def import_lines(self, namespace: str, raw: bytes, *, replace: bool = False) -> int:
        """Load JSON lines from :meth:`export_lines` into ``namespace`` (one transaction);
        a record of another namespace is refused before anything is written."""
        records = []
        for i, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise Refused(400, "malformed_json", f"line {i} is not valid JSON: {exc}") from exc
            if not isinstance(rec, dict) or not isinstance(rec.get("record"), dict):
                raise Refused(422, "invalid_input", f"line {i} is not an exported record")
            kind = rec.get("type")
            owner = rec.get("namespace") if kind == "trajectory" else rec["record"].get("namespace")
            if (owner or "default") != namespace:
                raise Refused(
                    403,
                    "forbidden",
                    f"line {i} belongs to namespace {owner!r}; this key writes only {namespace!r}",
                )
            records.append(rec)
        # The store checks the namespace again: the import can only write the caller's.
        return self.store.import_records(records, replace=replace, namespace=namespace)

    # -- reads --------------------------------------------------------------------

    def retrieve(self, namespace: str, task: str, **options: Any) -> tuple[list[RetrievalHit], str]:
        """The hits for ``task`` and their rendered guidelines block."""
        m = self.memory(namespace)
        hits = m.retrieve(task, **options)
        return hits, m.render(hits)

    def procedures(self, namespace: str, **filters: Any) -> list[Procedure]:
        """Procedures of ``namespace``; ``filters``: those of ``MemoryStore.list``."""
        return self.store.list(namespace=namespace, **filters)

    def count(self, namespace: str, **filters: Any) -> int:
        return self.store.count(namespace=namespace, **filters)

    def procedure(self, namespace: str, procedure_id: str) -> Procedure:
        return self.store.get(procedure_id, namespace=namespace)

    def history(self, namespace: str, procedure_id: str) -> list[Procedure]:
        return self.store.history(procedure_id, namespace=namespace)

    def trajectories(self, namespace: str, **filters: Any) -> list[Trajectory]:
        return self.store.list_trajectories(namespace=namespace, **filters)

    def trajectory(self, namespace: str, trajectory_id: str) -> Trajectory:
        return self.store.get_trajectory(trajectory_id, namespace=namespace)

    def export_lines(self, namespace: str) -> Iterator[str]:
        """The namespace's procedures (with vectors), their earlier versions and its
        trajectories as JSON lines: the format ``memp memory import`` reads."""
        for rec in self.store.export_records(namespace=namespace):
            yield json.dumps(rec, default=str) + "\n"

    # -- skills (sessions in this process's memory: memp.server.sessions) ----------

    def skill_start(
        self,
        namespace: str,
        task: str,
        environment: str,
        *,
        config: dict[str, Any] | None = None,
        handover_when_stuck: bool = False,
        track: bool = True,
        observation: str | None = None,
        admissible: Sequence[str] | None = None,
        adapt: bool = False,
    ) -> dict[str, Any]:
        """A skill for ``task`` in ``environment`` (its registered name) as a new session:
        its id, program, binding and, given the first ``observation``, the first action.
        ``adapt``: the service's LLM writes a program where no template matches."""
        from memp.skills.semantics_registry import semantics_for

        semantics = semantics_for(environment)
        cfg = exec_config(config)
        self.sessions.check_room()  # before the procedures are counted as retrieved
        skill = self.memory(namespace).skill(
            task,
            environment=environment,
            semantics=semantics,
            config=cfg,
            handover_when_stuck=handover_when_stuck,
            track=track,
            adapt=adapt,
            admissible=admissible,
        )
        if skill is None:
            raise no_skill(task, environment, namespace)
        sid = self.sessions.open(namespace, environment, skill)
        started = {
            "task": task,
            "environment": environment,
            "procedure_id": skill.procedure_id,
            "procedure_ids": skill.procedure_ids,
            "program": skill.program.model_dump(mode="json"),
            "binding": skill.binding,
            "notes": _plain(skill.notes),
        }
        if observation is None:
            return {**started, **_state(sid, skill, None)}
        return {**started, **self.skill_step(namespace, sid, observation, admissible)}

    def skill_step(
        self,
        namespace: str,
        session_id: str,
        observation: str,
        admissible: Sequence[str] | None = None,
        *,
        done: bool = False,
        won: bool = False,
    ) -> dict[str, Any]:
        """The next action after ``observation``; ``done`` / ``won``: the episode is over,
        its outcome is counted and the session ends."""
        if done or won:
            return self.skill_finish(namespace, session_id, success=won)
        with self.sessions.using(namespace, session_id) as session:
            skill = session.skill
            return _state(session_id, skill, skill.next_action(observation, admissible))

    def skill_finish(self, namespace: str, session_id: str, *, success: bool) -> dict[str, Any]:
        """Count the outcome on the session's procedures (in the store) and end it."""
        with self.sessions.using(namespace, session_id) as session:
            skill = session.skill
            skill.finish(success)
            self.sessions.close(session_id)
            return {**_state(session_id, skill, None), "stopped": skill.stopped or "finished"}


def exec_config(fields: dict[str, Any] | None) -> Any:
    """An :class:`~memp.skills.runtime.ExecConfig` from a request's fields (the no-LLM
    configuration with them changed); ``None`` -> the default."""
    import dataclasses

    from pydantic import TypeAdapter, ValidationError

    from memp.skills.runtime import ExecConfig

    if not fields:
        return None
    known = [f.name for f in dataclasses.fields(ExecConfig)]
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise Refused(
            422,
            "unknown_field",
            f"unknown skill config field(s): {', '.join(unknown)}; valid: {', '.join(known)}",
        )
    merged = {**dataclasses.asdict(ExecConfig.no_llm()), **fields}
    try:
        return TypeAdapter(ExecConfig).validate_python(merged, strict=False)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"bad skill config: {problems}") from None


def _plain(data: Any) -> Any:
    """``data`` as plain JSON values (what a skill notes may hold, said as text)."""
    return json.loads(json.dumps(data, default=str))


def _state(session_id: str, skill: Any, action: str | None) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "action": action,
        "stopped": None if action is not None else skill.stopped,
        "steps_taken": skill.steps_taken,
        "pointer": skill.pointer,
        "info": _plain(skill.last_info),
        "outcome": skill.outcome,
    }
