"""Memory: the one object an agent talks to (build, retrieve, update, inspect)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from memp.api import (
    BaseMemory,
    check_build,
    check_retrieve,
    check_skill,
    check_update_options,
)
from memp.build import build_procedure, extract_facts
from memp.embed.base import Embedder
from memp.errors import DimensionMismatch, InvalidInput, check_choice
from memp.llm.base import LLM
from memp.retrieve import (
    BM25Index,
    Candidate,
    avefact_candidates,
    cosine_to,
    hybrid_candidates,
    pack,
    query_candidates,
    random_candidates,
)
from memp.store import MemoryStore, open_store
from memp.store.records import check_identity
from memp.tokens import TokenCounter, count_tokens
from memp.types import Outcome, Procedure, ProcedureStatus, RetrievalHit, Trajectory
from memp.update import UpdateReport, apply_update, merge_duplicates

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics, Env
    from memp.skills.handle import Skill
    from memp.skills.runtime import ExecConfig


class Memory(BaseMemory):
    """Procedural memory over a store: :class:`memp.api.MemoryAPI` in this process.

    ``llm``: used to abstract scripts and rewrite procedures; when None, the default
    local model is loaded on first need (strategy ``trajectory`` never needs it).
    ``embedder``: when None, the default local embedder is loaded on first need.
    ``facts``: how key facts are extracted ("auto": by the LLM if one was passed,
    otherwise content keywords).

    A store belongs to one embedder: its name and dimension are recorded with the first
    procedure written (a store written before that adopts the first embedder that opens
    it), and another embedder is refused with :class:`memp.errors.EmbedderMismatch`.
    Which trajectories become procedures follows :func:`memp.build.builds`.
    """

    def __init__(
        self,
        store: MemoryStore | str | Path = "memp.db",
        *,
        llm: LLM | None = None,
        embedder: Embedder | None = None,
        namespace: str = "default",
        facts: Literal["auto", "llm", "keywords"] = "auto",
        token_counter: TokenCounter = count_tokens,
        seed: int | None = None,
    ) -> None:
        check_choice("facts mode", facts, ("auto", "llm", "keywords"))
        self.store: MemoryStore = open_store(store)
        self._claimed = False
        self.namespace = namespace
        self._llm = llm
        self._embedder = embedder
        self._facts = facts
        self.count_tokens = token_counter
        self._seed = seed
        self._bm25: dict[tuple[Any, ...], BM25Index] = {}
        if embedder is not None:
            try:
                self._check_embedder(embedder)
            except Exception:
                if isinstance(store, str | Path):  # opened here: do not leak it
                    self.store.close()
                raise

    # -- backends ---------------------------------------------------------------

    def _check_embedder(self, embedder: Embedder) -> None:
        """Refuse an embedder whose vectors would not compare with the stored ones."""
        dim = self.store.dim
        if dim is not None and dim != embedder.dim:
            raise DimensionMismatch(
                f"embedder {embedder.name!r} gives {embedder.dim}-dimensional vectors but this "
                f"store holds {dim}-dimensional ones; use the embedder the store was built with "
                "or a new store"
            )
        recorded = self.store.embedder_identity
        if recorded is not None:
            check_identity(recorded, embedder.name, embedder.dim, "this store")
            self._claimed = True
        elif dim is not None:
            # Vectors from before identities were recorded: the first embedder adopts them.
            self._claim(embedder)

    def _claim(self, embedder: Embedder) -> None:
        """Record the embedder as the store's (once; an empty store records nothing
        until its first procedure is written)."""
        if not self._claimed:
            self.store.check_embedder(embedder.name, embedder.dim)
            self._claimed = True

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from memp.embed import make_embedder

            emb = make_embedder(None)
            self._check_embedder(emb)
            self._embedder = emb
        return self._embedder

    def llm_required(self, why: str) -> LLM:
        if self._llm is None:
            try:
                from memp.llm import make_llm
            except ImportError as e:  # pragma: no cover - backends missing entirely
                raise InvalidInput(f"{why} needs an LLM; pass llm=... to Memory") from e
            self._llm = make_llm(None)
        return self._llm

    @property
    def _facts_llm(self) -> LLM | None:
        if self._facts == "keywords":
            return None
        if self._facts == "llm":
            return self.llm_required("fact extraction")
        return self._llm

    # -- build ------------------------------------------------------------------

    def _embed(self, p: Procedure) -> Procedure:
        texts = [p.task] + ([p.task_key] if p.task_key else []) + list(p.facts)
        vecs = self.embedder.embed(texts)
        i = 1
        key = None
        if p.task_key:
            key, i = vecs[1].tolist(), 2
        return p.model_copy(
            update={
                "embedding": vecs[0].tolist(),
                "key_embedding": key,
                "fact_embeddings": vecs[i:].tolist(),
            }
        )

    def build(
        self,
        trajectory: Trajectory,
        *,
        strategy: str = "proceduralization",
        task_key: str | None = None,
        keep_failed: bool = False,
        env: Env | None = None,
        semantics: ActionSemantics | None = None,
    ) -> Procedure:
        """Build a procedure (with embeddings) without storing it.

        A failed trajectory is refused unless ``keep_failed`` (then it is marked and
        rendered as a failed attempt): see :func:`memp.build.builds`. Strategy
        ``executable`` compiles a program (:func:`memp.build.build_executable`) and
        needs ``env`` (its episodes replay-verify the distillation) or ``semantics``.
        """
        check_build(trajectory, strategy)
        p = build_procedure(
            trajectory,
            strategy=strategy,
            llm=lambda: self.llm_required(f"build strategy {strategy!r}"),
            facts_llm=self._facts_llm,
            namespace=self.namespace,
            task_key=task_key,
            keep_failed=keep_failed,
            env=env,
            semantics=semantics,
        )
        return self._embed(p)

    def record(self, trajectory: Trajectory) -> None:
        """Store the raw trajectory (the material procedures are built from)."""
        self.store.add_trajectory(trajectory, namespace=self.namespace)

    def add(
        self,
        trajectory: Trajectory,
        *,
        strategy: str = "proceduralization",
        task_key: str | None = None,
        keep_failed: bool = False,
        env: Env | None = None,
        semantics: ActionSemantics | None = None,
    ) -> Procedure:
        """Build a procedure from ``trajectory`` and store both.

        A failed trajectory is refused (nothing stored) unless ``keep_failed``: see
        :func:`memp.build.builds`; :meth:`record` stores the trajectory alone.
        ``env`` / ``semantics``: for strategy ``executable`` (see :meth:`build`).
        """
        p = self.build(
            trajectory,
            strategy=strategy,
            task_key=task_key,
            keep_failed=keep_failed,
            env=env,
            semantics=semantics,
        )
        self.record(trajectory)
        return self.add_procedure(p)

    def add_procedure(self, procedure: Procedure) -> Procedure:
        """Store a ready-made procedure (embedded here if it carries no vectors)."""
        p = procedure.model_copy(update={"namespace": self.namespace})
        if p.embedding is None:
            if not p.facts:
                p = p.model_copy(
                    update={"facts": extract_facts(p.task, p.environment, self._facts_llm)}
                )
            p = self._embed(p)
        if self._embedder is not None:  # vectors made elsewhere say nothing of our embedder
            self._claim(self._embedder)
        self.store.add([p])
        return p

    # -- retrieve ---------------------------------------------------------------

    def _bm25_index(self, environment: str | None) -> BM25Index:
        token_fn = getattr(self.store, "change_token", None)
        token = token_fn() if token_fn else None
        key = (self.namespace, environment, token)
        idx = self._bm25.get(key) if token is not None else None
        if idx is None:
            idx = BM25Index(self.store.list(namespace=self.namespace, environment=environment))
            self._bm25 = {key: idx}  # keep only the newest index
        return idx

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
        track: bool = True,
    ) -> list[RetrievalHit]:
        """The best active procedures for ``task``.

        ``min_score``: cosine floor. ``budget_tokens``: the rendered block of the hits
        never exceeds it. ``track``: count the returned hits as retrieved (feeds erasure).
        """
        check_retrieve(strategy, k, budget_tokens)
        # Fetch extra candidates so that skipping long ones under a budget still fills k.
        depth = k * 4 if budget_tokens is not None else k
        ns = self.namespace
        cands: list[Candidate]
        if strategy == "random":
            cands = random_candidates(self.store, depth, ns, environment, self._seed)
        elif strategy == "query":
            cands = query_candidates(
                self.store, self.embedder, task, task_key, depth, ns, environment
            )
        elif strategy == "avefact":
            facts = extract_facts(task, environment or "generic", self._facts_llm)
            cands = avefact_candidates(self.store, self.embedder, facts, depth, ns, environment)
        else:
            cands = hybrid_candidates(
                self.store,
                self.embedder,
                self._bm25_index(environment),
                task,
                task_key,
                depth,
                ns,
                environment,
            )
        hits: list[RetrievalHit] = []
        qvec: np.ndarray | None = None
        for c in cands:
            try:
                p = self.store.get(c.id, namespace=ns)
            except KeyError:
                continue  # deleted between search and fetch
            if p.status != ProcedureStatus.ACTIVE:
                continue
            if strategy != "random":
                cos = c.cosine
                if cos is None:  # a BM25-only hybrid hit: measure its cosine for the floor
                    if qvec is None:
                        qvec = self.embedder.embed([task])[0]
                    cos = cosine_to(p, qvec)
                    c.signals["dense"] = None if cos is None else round(cos, 4)
                if cos is None or cos < min_score:
                    continue
            hits.append(RetrievalHit(procedure=p, score=c.score, signals=c.signals))
        hits = pack(hits, k, budget_tokens, self.count_tokens)
        if track:
            for h in hits:
                self.store.record_usage(h.procedure.id, retrieved=1, namespace=ns)
        return hits

    # -- executable procedures --------------------------------------------------

    def skill(
        self,
        task: str,
        *,
        environment: str | None = None,
        semantics: ActionSemantics | None = None,
        env: Env | None = None,
        config: ExecConfig | None = None,
        handover_when_stuck: bool = False,
        track: bool = True,
        adapt: bool = False,
        admissible: Sequence[str] | None = None,
    ) -> Skill | None:
        """A runnable skill for ``task`` from the executable procedures of its template,
        or None when no stored template matches the task (and none could be adapted).

        ``env`` gives both ``environment`` (its name) and ``semantics``; otherwise pass
        both. ``config``: the runtime's switches and budgets. ``adapt``: this memory's LLM
        is asked, before the first step only, which template a differently worded task
        means and, where none matches, to write the task's program from the nearest
        stored ones (``skill.adapted`` then records the hand-over; ``admissible``, the
        episode's first admissible actions, shows it the places). Stepping never calls
        an LLM.
        ``track``: count the procedures as retrieved. The outcome is counted with
        :meth:`memp.skills.handle.Skill.finish` (or :meth:`report` on its procedure ids);
        :meth:`learn` turns the played episode into memory.
        The skill returned is a :class:`memp.skills.handle.LocalSkill`, stepped in this process.
        """
        from memp.skills.handle import skill_for
        from memp.skills.runtime import ExecConfig

        check_skill(task)
        environment = environment or getattr(env, "name", None)
        semantics = semantics or getattr(env, "semantics", None)
        if environment is None or semantics is None:
            raise InvalidInput(
                "skill() needs the environment: pass env=<a memp.envs environment>, or "
                "environment=<its name> and semantics=<its ActionSemantics>"
            )
        llm = self.llm_required("adapting a program (skill(adapt=True))") if adapt else None
        cfg = config or (ExecConfig() if adapt else ExecConfig.no_llm())
        found = skill_for(
            self, task, environment, semantics, cfg, handover_when_stuck, llm, admissible
        )
        if found is not None and track and found.adapted is None:
            for pid in found.procedure_ids:
                self.store.record_usage(pid, retrieved=1, namespace=self.namespace)
        return found

    # -- update -----------------------------------------------------------------

    def update(
        self, outcomes: Sequence[Outcome], *, strategy: str = "validation", **options: Any
    ) -> UpdateReport:
        check_update_options(options)
        return apply_update(self, outcomes, strategy=strategy, **options)

    def report(self, procedure_ids: Iterable[str], *, success: bool) -> None:
        """Count one success or failure for each procedure that was used."""
        for pid in procedure_ids:
            self.store.record_usage(
                pid, succeeded=int(bool(success)), failed=int(not success), namespace=self.namespace
            )

    def merge_duplicates(self, threshold: float = 0.95) -> UpdateReport:
        return merge_duplicates(self, threshold)

    # -- inspect ----------------------------------------------------------------

    def get(self, procedure_id: str) -> Procedure:
        return self.store.get(procedure_id, namespace=self.namespace)

    def list(
        self,
        *,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Procedure]:
        return self.store.list(
            namespace=self.namespace,
            environment=environment,
            status=status,
            limit=limit,
            offset=offset,
        )

    def count(
        self,
        *,
        environment: str | None = None,
        status: ProcedureStatus | None = ProcedureStatus.ACTIVE,
    ) -> int:
        return self.store.count(namespace=self.namespace, environment=environment, status=status)

    def history(self, procedure_id: str) -> list[Procedure]:
        return self.store.history(procedure_id, namespace=self.namespace)

    def get_trajectory(self, trajectory_id: str) -> Trajectory:
        return self.store.get_trajectory(trajectory_id, namespace=self.namespace)

    def list_trajectories(
        self, *, environment: str | None = None, limit: int | None = None
    ) -> list[Trajectory]:
        return self.store.list_trajectories(
            namespace=self.namespace, environment=environment, limit=limit
        )

    def retire(self, procedure_id: str) -> Procedure:
        return self.store.set_status(
            procedure_id, ProcedureStatus.RETIRED, namespace=self.namespace
        )

    # -- export / import --------------------------------------------------------

    def export_jsonl(self, path: str | Path) -> int:
        """Write every record of this namespace (procedures with vectors, earlier versions,
        trajectories) as JSON lines; returns the number of lines."""
        recs = getattr(self.store, "export_records", None)
        records = recs(namespace=self.namespace) if recs else self._export_generic()
        n = 0
        with Path(path).open("w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
                n += 1
        return n

    def _export_generic(self) -> Iterable[dict[str, Any]]:
        for p in self.store.list(namespace=self.namespace, status=None):
            hist = self.store.history(p.id, namespace=self.namespace)
            for old in hist[:-1]:
                yield {"type": "version", "record": old.model_dump(mode="json")}
            full = self.store.get(p.id, namespace=self.namespace)
            yield {"type": "procedure", "record": full.model_dump(mode="json")}
        for t in self.store.list_trajectories(namespace=self.namespace):
            yield {
                "type": "trajectory",
                "namespace": self.namespace,
                "record": t.model_dump(mode="json"),
            }

    def import_jsonl(self, path: str | Path, *, replace: bool = False) -> int:
        """Load a file written by :meth:`export_jsonl` into this namespace (a record of
        another namespace is refused); returns the number of records."""
        p = Path(path)
        if not p.is_file():
            from memp.errors import MissingData

            raise MissingData(f"export file {p} does not exist")
        records = []
        with p.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InvalidInput(f"{p} line {n}: not valid JSON ({e.msg})") from e
                if not isinstance(rec, dict) or "record" not in rec:
                    raise InvalidInput(f"{p} line {n}: expected an object with 'type' and 'record'")
                records.append(rec)
        imp = getattr(self.store, "import_records", None)
        if imp is not None:
            return imp(records, replace=replace, namespace=self.namespace)
        for rec in records:  # generic path: history is replayed as new versions
            if rec["type"] == "procedure":
                self.store.add([Procedure.model_validate(rec["record"])])
            elif rec["type"] == "trajectory":
                self.store.add_trajectory(
                    Trajectory.model_validate(rec["record"]),
                    namespace=rec.get("namespace", "default"),
                )
        return len(records)

    def stats(self) -> dict[str, Any]:
        fn = getattr(self.store, "stats", None)
        if fn is not None:
            return fn()
        return {"procedures": {"active": self.store.count(namespace=self.namespace)}}

    def close(self) -> None:
        self.store.close()
