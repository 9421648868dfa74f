"""Memory service under bounded load: SQLite vs PostgreSQL side by side.

Starts `memp serve` on 127.0.0.1 (a free port) once per backend, seeds it with
procedures, then runs a fixed number of requests from a fixed number of concurrent
clients for each operation and prints p50/p99 latency and requests/s.

    python bench/service.py [--clients 8] [--requests 150] [--seed 500] [--database-url URL]

The embedder is the hashing one (`hash`), so the numbers measure the service and
the store, not a model. PostgreSQL comes from MEMP_BENCH_DATABASE_URL/--database-url
or a private server started from the `pgserver` wheel.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memp.server.http import serving
from memp.store import open_store
from memp.store.keys import keys_for
from memp.types import Step, Trajectory

WORDS = ["apple", "egg", "mug", "pan", "lamp", "book", "knife", "plate", "potato", "tomato"]
VERBS = ["put", "heat", "cool", "clean", "slice", "examine", "find"]
PLACES = ["fridge", "microwave", "countertop", "sinkbasin", "drawer", "shelf", "desk"]


def task(rng: random.Random) -> str:
    return f"{rng.choice(VERBS)} the {rng.choice(WORDS)} and put it in the {rng.choice(PLACES)} {rng.randrange(1000)}"


def episode(rng: random.Random) -> dict:
    t = task(rng)
    steps = [Step(action=f"go to {rng.choice(PLACES)} {i}", observation="ok") for i in range(8)]
    return Trajectory(task=t, environment="alfworld", success=True, steps=steps).model_dump(
        mode="json"
    )


def load(
    url: str, token: str, op: str, clients: int, requests: int, progress: Progress, label: str
) -> dict[str, float]:
    bar = progress.add_task(f"{label}: {op}", total=clients * requests)

    def one_client(cid: int) -> list[float]:
        rng = random.Random(cid)
        out = []
        with httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            for _ in range(requests):
                if op == "retrieve":
                    body, path = {"task": task(rng), "k": 3}, "/v1/retrieve"
                else:
                    body, path = (
                        {"trajectory": episode(rng), "build": "trajectory"},
                        "/v1/trajectories",
                    )
                t0 = time.perf_counter()
                r = c.post(path, json=body)
                out.append(time.perf_counter() - t0)
                r.raise_for_status()
                progress.advance(bar)
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        lat = [x for xs in pool.map(one_client, range(clients)) for x in xs]
    wall = time.perf_counter() - t0
    qs = statistics.quantiles(lat, n=100)
    return {"p50": qs[49] * 1000, "p99": qs[98] * 1000, "rps": len(lat) / wall}


def run_backend(
    db: str, label: str, args: argparse.Namespace, progress: Progress
) -> dict[str, dict[str, float]]:
    store = open_store(db)
    keys = keys_for(store, db)
    _, token = keys.create("bench")
    keys.close()
    store.close()
    with serving(db) as url:
        rng = random.Random(0)
        seed_bar = progress.add_task(f"{label}: seed", total=args.seed)
        with httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            for _ in range(args.seed):
                c.post(
                    "/v1/trajectories", json={"trajectory": episode(rng), "build": "trajectory"}
                ).raise_for_status()
                progress.advance(seed_bar)
        return {
            op: load(url, token, op, args.clients, args.requests, progress, label)
            for op in ("retrieve", "record")
        }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients")
    ap.add_argument("--requests", type=int, default=150, help="requests per client and operation")
    ap.add_argument("--seed", type=int, default=500, help="procedures stored before measuring")
    ap.add_argument("--database-url", default=os.environ.get("MEMP_BENCH_DATABASE_URL"))
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="memp-bench-")
    server = None
    pg_url = args.database_url
    if not pg_url:
        import pgserver

        server = pgserver.get_server(os.path.join(tmp, "pg"), cleanup_mode="stop")
        pg_url = server.get_uri()
    results = {}
    try:
        with Progress(transient=True) as progress:
            results["SQLite"] = run_backend(os.path.join(tmp, "memp.db"), "SQLite", args, progress)
            results["PostgreSQL"] = run_backend(pg_url, "PostgreSQL", args, progress)
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    table = Table(
        title=f"memp serve, {args.clients} clients x {args.requests} requests, {args.seed} stored procedures, 127.0.0.1"
    )
    table.add_column("operation")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    table.add_column("PostgreSQL / SQLite", justify="right")
    for op in ("retrieve", "record"):
        for metric, unit in (("p50", "ms"), ("p99", "ms"), ("rps", "req/s")):
            s, p = results["SQLite"][op][metric], results["PostgreSQL"][op][metric]
            table.add_row(op, f"{metric} ({unit})", f"{s:.1f}", f"{p:.1f}", f"{p / s:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
