"""Worker processes do not outlive their runner, and one memory file has one writer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from memp.errors import InvalidInput
from memp.experiment.worker import writing


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_pool_worker_exits_when_runner_is_killed():
    # The runner is killed by SIGKILL (no chance to shut its pool down) while its worker
    # is busy; the worker must go too, not keep writing.
    script = textwrap.dedent(
        """
        import os, signal, sys, time
        from memp.experiment.executors import LocalExecutor
        ex = LocalExecutor(workers=1)
        pid = ex._pool.submit(os.getpid).result()
        ex._pool.submit(time.sleep, 120)
        time.sleep(1.0)
        print(pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(runner.stdout.readline())
    runner.wait(timeout=60)
    deadline = time.monotonic() + 15
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker), "the pool worker outlived its killed runner"


def test_second_writer_of_a_memory_is_refused(tmp_path):
    path = str(tmp_path / "memory.db")
    refused = pytest.raises(InvalidInput, match=r"being written by process \d+.*stop that run")
    with writing(path), refused, writing(path):
        pass
    with writing(path):  # released on exit
        pass


def test_lock_of_a_killed_writer_is_free(tmp_path):
    path = str(tmp_path / "memory.db")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from memp.experiment.worker import writing\n"
            f"with writing({path!r}):\n"
            "    print('held', flush=True); time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InvalidInput, match=f"process {holder.pid}"), writing(path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with writing(path):
        pass
