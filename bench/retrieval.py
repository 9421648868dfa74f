"""Retrieval latency of the SQLite store vs FAISS flat inner-product search.

Grows one store file to 10k, 100k and 1M procedures (384-d unit vectors) and, at each
size, times exact top-k search (query embedding excluded) in the store and in
``faiss.IndexFlatIP`` holding the same vectors, in the same run, queries interleaved.
Also prints insert throughput: the ordinary one-transaction-per-procedure ``add`` path
and the bulk path used to load the big sizes.

    python bench/retrieval.py                    # 10k, 100k, 1M (a few minutes)
    python bench/retrieval.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memp.store.sqlite import SQLiteStore
from memp.types import Procedure

DIM = 384
CHUNK = 50_000


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def stub(i: int) -> Procedure:
    return Procedure(
        id=f"p{i:08d}",
        task=f"put object {i % 997} in receptacle {i % 101}",
        script="1. Find the {object}.\n2. Put it in the {target}.",
        environment="alfworld" if i % 2 else "scienceworld",
        facts=[f"object {i % 997}", f"receptacle {i % 101}"],
    )


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument(
        "--dir", default=None, help="Where to put the store file (default: a temp dir)."
    )
    args = ap.parse_args()
    import faiss

    sizes = sorted(int(s) for s in args.sizes.split(","))
    rng = np.random.default_rng(0)
    con = Console(width=170)  # a wide table even when piped to a file
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="memp-bench-"))
    store = SQLiteStore(tmp / "bench.db")
    index = faiss.IndexFlatIP(DIM)

    # Ordinary path: one procedure per transaction, as an agent adds memory.
    n_single = 1000
    single_vecs = unit(rng, n_single)
    t0 = time.perf_counter()
    for i in range(n_single):
        p = stub(i).model_copy(update={"embedding": single_vecs[i].tolist()})
        store.add([p])
    single_rate = n_single / (time.perf_counter() - t0)
    index.add(single_vecs)
    have = n_single

    rows = []
    bulk_time, bulk_n = 0.0, 0
    with Progress(console=con) as bar:
        for size in sizes:
            task = bar.add_task(f"loading {size:,}", total=size - have)
            while have < size:
                n = min(CHUNK, size - have)
                vecs = unit(rng, n)
                procs = [stub(i) for i in range(have, have + n)]
                t0 = time.perf_counter()
                store.bulk_add(procs, vecs)
                bulk_time += time.perf_counter() - t0
                bulk_n += n
                index.add(vecs)
                have += n
                bar.advance(task, n)
            queries = unit(rng, args.queries)
            t0 = time.perf_counter()
            store.search(queries[0], k=args.k)  # first search loads / refreshes the matrix
            refresh = time.perf_counter() - t0
            index.search(queries[:1], args.k)
            ours, theirs, agree = [], [], 0
            for q in queries:
                t0 = time.perf_counter()
                got = store.search(q, k=args.k)
                ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                _, ids = index.search(q[None, :], args.k)
                theirs.append(time.perf_counter() - t0)
                # FAISS row i is procedure p{i}: both were filled in the same order.
                agree += [pid for pid, _ in got] == [f"p{j:08d}" for j in ids[0]]
            # Filtered search (environment = half the rows) on our side only.
            filt = []
            for q in queries[:50]:
                t0 = time.perf_counter()
                store.search(q, k=args.k, environment="alfworld")
                filt.append(time.perf_counter() - t0)
            rows.append((size, ours, theirs, filt, refresh, agree / len(queries)))

    table = Table(title=f"exact top-{args.k} search, {DIM}-d, {args.queries} queries (ms)")
    for col in (
        "procedures",
        "memp p50",
        "memp p99",
        "faiss p50",
        "faiss p99",
        "ratio p50",
        "ratio p99",
        "memp env-filter p50",
        "same top-k",
        "matrix load/refresh s",
    ):
        table.add_column(col, justify="right")
    for size, ours, theirs, filt, refresh, agree in rows:
        table.add_row(
            f"{size:,}",
            f"{pct(ours, 50):.2f}",
            f"{pct(ours, 99):.2f}",
            f"{pct(theirs, 50):.2f}",
            f"{pct(theirs, 99):.2f}",
            f"{pct(ours, 50) / pct(theirs, 50):.2f}x",
            f"{pct(ours, 99) / pct(theirs, 99):.2f}x",
            f"{pct(filt, 50):.2f}",
            f"{agree:.0%}",
            f"{refresh:.2f}",
        )
    con.print(table)
    con.print(
        f"insert throughput: add() one transaction per procedure {single_rate:,.0f}/s; "
        f"bulk_add {bulk_n / bulk_time:,.0f}/s over {bulk_n:,} procedures"
    )
    store.close()
    con.print(f"store file: {tmp / 'bench.db'} ({(tmp / 'bench.db').stat().st_size / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
