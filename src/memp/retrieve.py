"""Retrieval strategies, rank fusion, budget packing and prompt rendering.

- ``random``: k active procedures at random (the paper's baseline).
- ``query``: cosine between the task's embedding and stored task embeddings; when a
  ``task_key`` (abstracted template) is given it is matched against stored keys too
  and a procedure scores the better of the two.
- ``avefact``: key facts of the task (LLM or keywords) each matched against stored
  fact embeddings; a procedure scores the mean over the task's facts of its best match.
- ``hybrid``: BM25 (rank-bm25) and dense rankings fused by reciprocal rank.

The similarity floor applies to cosines (``query``/``avefact`` scores, the dense signal
of ``hybrid``); ``random`` ignores it.
"""

from __future__ import annotations

import random as _random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rank_bm25 import BM25Plus

from memp.build import is_failure
from memp.embed.base import Embedder
from memp.store.base import MemoryStore
from memp.tokens import STOPWORDS, count_tokens
from memp.types import Procedure, ProcedureStatus, RetrievalHit

RETRIEVE_STRATEGIES = ("random", "query", "avefact", "hybrid")
RRF_K = 60  # the usual reciprocal-rank-fusion constant
FACT_MATCH = 0.5  # a task fact counts as "matched" by a procedure at this cosine


@dataclass
class Candidate:
    id: str
    score: float
    signals: dict[str, Any] = field(default_factory=dict)
    cosine: float | None = None  # what the similarity floor is applied to


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def random_candidates(
    store: MemoryStore, k: int, namespace: str | None, environment: str | None, seed: int | None
) -> list[Candidate]:
    n = store.count(namespace=namespace, environment=environment)
    rng = _random.Random(seed)
    out = []
    for off in rng.sample(range(n), min(k, n)):
        p = store.list(namespace=namespace, environment=environment, limit=1, offset=off)
        if p:
            out.append(Candidate(p[0].id, 0.0, {"random": True}))
    return out


def query_candidates(
    store: MemoryStore,
    embedder: Embedder,
    task: str,
    task_key: str | None,
    k: int,
    namespace: str | None,
    environment: str | None,
) -> list[Candidate]:
    texts = [task] + ([task_key] if task_key else [])
    vecs = embedder.embed(texts)
    best: dict[str, Candidate] = {}
    for pid, s in store.search(
        vecs[0], kind="task", k=k, namespace=namespace, environment=environment
    ):
        best[pid] = Candidate(pid, s, {"dense": round(s, 4)}, s)
    if task_key:
        # Match the template against stored templates and, for procedures without one,
        # against their task text: "put a hot {object} in {target}" still finds them.
        for kind in ("key", "task"):
            for pid, s in store.search(
                vecs[1],
                kind=kind,
                k=k,
                namespace=namespace,
                environment=environment,  # type: ignore[arg-type]
            ):
                c = best.setdefault(pid, Candidate(pid, -1.0, {}, -1.0))
                c.signals[f"{kind}_key"] = round(s, 4)
                if s > c.score:
                    c.score = c.cosine = s
    return sorted(best.values(), key=lambda c: -c.score)


def avefact_candidates(
    store: MemoryStore,
    embedder: Embedder,
    facts: Sequence[str],
    k: int,
    namespace: str | None,
    environment: str | None,
) -> list[Candidate]:
    if not facts:
        return []
    vecs = embedder.embed(list(facts))
    per: dict[str, dict[str, float]] = {}
    for fact, v in zip(facts, vecs, strict=True):
        for pid, s in store.search(
            v, kind="fact", k=k * 4, namespace=namespace, environment=environment
        ):
            per.setdefault(pid, {})[fact] = s
    out = []
    for pid, m in per.items():
        # A fact with no match in this procedure's top list contributes 0.
        mean = sum(max(m.get(f, 0.0), 0.0) for f in facts) / len(facts)
        matched = [f for f in facts if m.get(f, 0.0) >= FACT_MATCH]
        out.append(Candidate(pid, mean, {"avefact": round(mean, 4), "facts": matched}, mean))
    return sorted(out, key=lambda c: -c.score)


_TOKEN = re.compile(r"[a-z0-9]+")


def bm25_tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


def bm25_text(p: Procedure) -> str:
    return " ".join(x for x in (p.task, p.task_key or "", " ".join(p.facts), p.script or "") if x)


class BM25Index:
    """BM25 over the active procedures of one scope, rebuilt when the store changes."""

    def __init__(self, procedures: Sequence[Procedure]) -> None:
        self.ids = [p.id for p in procedures]
        corpus = [bm25_tokens(bm25_text(p)) or ["<empty>"] for p in procedures]
        self.vocab = [set(doc) for doc in corpus]
        # BM25+ keeps every idf positive; Okapi's idf is 0 or negative for a term in half
        # the documents or more, which blanks out small memories.
        self.bm25 = BM25Plus(corpus) if corpus else None

    def top(self, query: str, k: int) -> list[tuple[str, float]]:
        q = bm25_tokens(query)
        if self.bm25 is None or not q:
            return []
        scores = self.bm25.get_scores(q)
        # BM25+ gives every document a floor score: rank only those sharing a query term.
        qset = set(q)
        scores = np.where([not qset.isdisjoint(v) for v in self.vocab], scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.ids[i], float(scores[i])) for i in order if np.isfinite(scores[i])]


def hybrid_candidates(
    store: MemoryStore,
    embedder: Embedder,
    index: BM25Index,
    task: str,
    task_key: str | None,
    k: int,
    namespace: str | None,
    environment: str | None,
) -> list[Candidate]:
    depth = max(50, k * 5)
    dense = query_candidates(store, embedder, task, task_key, depth, namespace, environment)
    sparse = index.top(f"{task} {task_key or ''}", depth)
    fused: dict[str, Candidate] = {}
    for rank, c in enumerate(dense, 1):
        fused[c.id] = Candidate(
            c.id, 1.0 / (RRF_K + rank), {**c.signals, "dense_rank": rank}, c.cosine
        )
    for rank, (pid, s) in enumerate(sparse, 1):
        c = fused.setdefault(pid, Candidate(pid, 0.0, {}, None))
        c.score += 1.0 / (RRF_K + rank)
        c.signals.update(bm25=round(s, 4), bm25_rank=rank)
    for c in fused.values():
        c.signals["rrf"] = round(c.score, 6)
    return sorted(fused.values(), key=lambda c: -c.score)


def cosine_to(p: Procedure, query_vec: np.ndarray) -> float | None:
    if p.embedding is None:
        return None
    return float(np.dot(_unit(np.asarray(p.embedding, dtype=np.float32)), _unit(query_vec)))


# -- rendering and budget -----------------------------------------------------

HEADER = "Procedures that worked on similar past tasks (follow them where they fit):"
CAUTION = "Past attempts that failed on similar tasks (avoid repeating what went wrong):"


def render(hits: Sequence[RetrievalHit]) -> str:
    """The prompt block of guidelines; empty string when there are no hits.

    Procedures kept from failed trajectories (see :func:`memp.build.builds`) go under
    their own heading, so a failure is never presented as something that worked.
    """
    worked = [h for h in hits if not is_failure(h.procedure)]
    failed = [h for h in hits if is_failure(h.procedure)]
    blocks: list[str] = []
    i = 0
    for header, group in ((HEADER, worked), (CAUTION, failed)):
        if group:
            blocks.append(header)
        for h in group:
            i += 1
            blocks.append(f"[{i}] Task: {h.procedure.task}\n{h.procedure.text()}".rstrip())
    return "\n\n".join(blocks)


def pack(
    hits: Sequence[RetrievalHit],
    k: int,
    budget_tokens: int | None,
    counter: Callable[[str], int] = count_tokens,
) -> list[RetrievalHit]:
    """The best hits (in order) whose rendered block fits ``budget_tokens``.

    A hit too long for what is left is skipped and a shorter later one may still fit:
    the rendered block never exceeds the budget.
    """
    chosen: list[RetrievalHit] = []
    for h in hits:
        if len(chosen) == k:
            break
        if budget_tokens is not None and counter(render([*chosen, h])) > budget_tokens:
            continue
        chosen.append(h)
    return chosen


__all__ = [
    "RETRIEVE_STRATEGIES",
    "BM25Index",
    "Candidate",
    "ProcedureStatus",
    "avefact_candidates",
    "hybrid_candidates",
    "pack",
    "query_candidates",
    "random_candidates",
    "render",
]
