"""Executors: where an experiment's tasks run.

All follow :class:`ExecutorProtocol`: ``run(tasks)`` yields a :class:`TaskResult` as each
task finishes (in completion order). Each worker keeps its own models and environments
between tasks, so the local model loads once per worker.

- ``local``: a pool of worker processes on this machine (the default).
- ``ray``: Ray actors on a local Ray instance or a cluster (``address``). On a cluster the
  run directory must be on a filesystem all nodes see (memories are SQLite files there).
- ``inline``: in this process, one task at a time (debugging).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol, runtime_checkable

from memp.errors import InvalidInput, MissingDependency, check_choice
from memp.experiment.worker import Task, TaskResult, process_context, run_in_process

EXECUTORS = ("local", "ray", "inline")


@runtime_checkable
class ExecutorProtocol(Protocol):
    name: str
    workers: int

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]: ...
    def close(self) -> None: ...


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(uses_llm: bool) -> int:
    # The local LLM uses every core it is given, and two llama.cpp processes on the same
    # cores only contend; environments and the expert are single-threaded and cheap.
    cpus = cpu_count()
    return max(1, cpus // 2) if uses_llm else cpus


def _init_worker(threads: int) -> None:
    # Give each worker its share of the cores for BLAS / llama.cpp / ONNX threads.
    os.environ.setdefault("MEMP_LLM_THREADS", str(threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    _exit_with_parent()


def _exit_with_parent(poll: float = 0.5) -> None:
    """End this worker when the runner that spawned it dies.

    A runner killed by a signal does not shut its pool down; an orphaned worker would go
    on writing the memory it was building while a resumed run builds the same file.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="memp-parent-watch", daemon=True).start()


class InlineExecutor:
    name = "inline"

    def __init__(self) -> None:
        self.workers = 1

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        ctx = process_context()
        from memp.experiment.worker import execute

        for t in tasks:
            yield execute(t, ctx)

    def close(self) -> None:
        pass


class LocalExecutor:
    """A pool of spawned worker processes (spawn, not fork: llama.cpp and ONNX hold threads)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise InvalidInput(f"workers must be >= 1, got {workers}")
        self.workers = workers
        threads = max(1, cpu_count() // workers)
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads,),
        )

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        pending: set[Future[TaskResult]] = set()
        it = iter(tasks)
        # Keep a bounded queue in flight so a crash or Ctrl-C loses little queued work.
        limit = self.workers * 2
        for t in it:
            pending.add(self._pool.submit(run_in_process, t))
            if len(pending) >= limit:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.add(self._pool.submit(run_in_process, nxt))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Ray actors, one per worker, each holding its own models between tasks."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as e:
            raise MissingDependency("ray", extra="ray", why="the ray executor needs it") from e
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=workers or cpu_count(),
                    include_dashboard=False,
                    ignore_reinit_error=True,
                    log_to_driver=False,
                )
                self._owns = True
        total = int(ray.cluster_resources().get("CPU", 1))
        self.workers = workers or max(1, total)
        actor_cls = ray.remote(num_cpus=1)(_RayWorker)
        self._actors = [actor_cls.remote() for _ in range(self.workers)]

    def run(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        ray = self._ray
        idle = list(self._actors)
        running: dict[object, object] = {}
        it = iter(tasks)
        while True:
            while idle:
                t = next(it, None)
                if t is None:
                    break
                a = idle.pop()
                running[a.run.remote(t)] = a
            if not running:
                return
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                idle.append(running.pop(ref))
                yield ray.get(ref)

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []
        if self._owns:
            self._ray.shutdown()


class _RayWorker:
    def __init__(self) -> None:
        from memp.experiment.worker import WorkerContext

        threads = max(1, int(os.environ.get("MEMP_RAY_THREADS", "1")))
        _init_worker(threads)
        self.ctx = WorkerContext()

    def run(self, task: Task) -> TaskResult:
        from memp.experiment.worker import execute

        return execute(task, self.ctx)


def make_executor(
    name: str = "local",
    *,
    workers: int | None = None,
    address: str | None = None,
    uses_llm: bool = True,
) -> ExecutorProtocol:
    check_choice("executor", name, EXECUTORS)
    if name == "inline":
        return InlineExecutor()
    if name == "ray":
        return RayExecutor(workers=workers, address=address)
    return LocalExecutor(workers or default_workers(uses_llm))
