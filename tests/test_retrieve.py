"""Retrieval strategies, floor, budget, filters, rendering (real SQLite, hashing embedder)."""

from __future__ import annotations

import pytest

from memp.embed.hashing import HashEmbedder
from memp.memory import Memory
from memp.retrieve import HEADER
from memp.tokens import count_tokens
from memp.types import Procedure

TASKS = {
    "clean": "put a clean apple in the fridge",
    "heat": "heat some egg and put it on the countertop",
    "lamp": "examine the book under the desklamp",
    "boil": "boil water in the kitchen",
}


@pytest.fixture
def mem(tmp_path):
    m = Memory(tmp_path / "r.db", embedder=HashEmbedder(), seed=0)
    ids = {}
    for name, task in TASKS.items():
        env = "scienceworld" if name == "boil" else "alfworld"
        p = m.add_procedure(
            Procedure(task=task, environment=env, script=f"1. Do the {name} routine.\n2. Finish.")
        )
        ids[name] = p.id
    m.ids = ids
    yield m
    m.close()


def top(hits):
    return [h.procedure.id for h in hits]


def test_query_ranks_by_task_cosine(mem):
    hits = mem.retrieve("put a clean pear in the fridge", k=2)
    assert top(hits)[0] == mem.ids["clean"]
    assert hits[0].signals["dense"] == pytest.approx(hits[0].score, abs=1e-4)
    assert hits[0].score > hits[1].score


def test_avefact_scores_mean_over_task_facts(mem):
    hits = mem.retrieve("egg countertop", strategy="avefact", k=1)
    assert top(hits) == [mem.ids["heat"]]
    # Both keywords are facts of the "heat" procedure: mean of two exact matches.
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].signals["facts"] == ["egg", "countertop"]


def test_hybrid_fuses_bm25_and_dense(mem):
    hits = mem.retrieve("desklamp book", strategy="hybrid", k=4)
    assert top(hits)[0] == mem.ids["lamp"]
    s = hits[0].signals
    assert s["bm25_rank"] == 1 and s["dense_rank"] == 1
    assert hits[0].score == pytest.approx(2 / 61)


def test_random_returns_k_distinct_active(mem):
    hits = mem.retrieve("anything", strategy="random", k=3)
    assert len(set(top(hits))) == 3 and set(top(hits)) <= set(mem.ids.values())


def test_similarity_floor(mem):
    assert mem.retrieve("zebra quantum", k=3, min_score=0.3) == []
    hits = mem.retrieve("boil water", k=4, min_score=0.3)
    assert top(hits) == [mem.ids["boil"]]


def test_environment_filter(mem):
    hits = mem.retrieve("put water in the fridge", k=4, environment="scienceworld")
    assert top(hits) == [mem.ids["boil"]]


def test_budget_is_never_exceeded(mem):
    full = mem.render(mem.retrieve("put a clean apple in the fridge", k=4, track=False))
    for budget in (5, 30, 45, 60, 200):
        hits = mem.retrieve("put a clean apple in the fridge", k=4, budget_tokens=budget)
        assert count_tokens(mem.render(hits)) <= budget
    assert mem.retrieve("put a clean apple in the fridge", k=4, budget_tokens=5) == []
    assert len(mem.retrieve("x apple", k=4, budget_tokens=count_tokens(full))) == 4


def test_task_key_matches_templates(tmp_path):
    m = Memory(tmp_path / "k.db", embedder=HashEmbedder())
    hot = m.add_procedure(
        Procedure(task="put a hot potato in garbagecan", task_key="put a hot {object} in {target}")
    )
    m.add_procedure(
        Procedure(
            task="put a cool potato in garbagecan", task_key="put a cool {object} in {target}"
        )
    )
    hits = m.retrieve("put a hot mug in cabinet", task_key="put a hot {object} in {target}", k=1)
    assert top(hits) == [hot.id]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].signals["key_key"] == pytest.approx(1.0, abs=1e-4)


def test_render_block(mem):
    hits = mem.retrieve("boil water", k=1)
    block = mem.render(hits)
    assert block.startswith(HEADER)
    assert "[1] Task: boil water in the kitchen\n1. Do the boil routine." in block
    assert mem.render([]) == ""
