"""Work units of an experiment and how a worker process executes them.

Tasks are small picklable records; each worker builds its own LLM, embedder,
environments and memories from the specs inside them and keeps them for the next task
(the local model loads once per worker, not once per episode).
"""

from __future__ import annotations

import contextlib
import os
import random
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memp.agents.base import record_task_type
from memp.errors import InvalidInput
from memp.experiment.config import AgentConfig, ConditionConfig, EnvConfig
from memp.experiment.policies import make_policy
from memp.llm.base import LLM, Completion, Message
from memp.types import Outcome, Trajectory

if TYPE_CHECKING:
    from memp.envs.base import Env


@dataclass(frozen=True)
class CollectTask:
    """Play one training episode with the memory source (expert or an LLM without memory)."""

    env: EnvConfig
    source: str
    episode: int
    seed: int
    agent: AgentConfig
    embedder: str
    distill: bool = False  # also distill a won episode (by replay) for the build

    @property
    def key(self) -> str:
        return f"collect/{self.env.key}/{self.source}/{self.episode}"


@dataclass(frozen=True)
class BuildTask:
    """Build one memory (a SQLite file) from training trajectories."""

    env: EnvConfig
    source: str
    build: str
    builder: str
    embedder: str
    path: str
    trajectories: tuple[str, ...]  # Trajectory JSON
    distill: bool = True

    @property
    def key(self) -> str:
        return f"build/{self.env.key}/{self.source}/{self.build}/{self.builder}"


@dataclass(frozen=True)
class EpisodeTask:
    """Evaluate one held-out episode under one condition."""

    env: EnvConfig
    arm: str
    condition: ConditionConfig
    model: str
    episode: int
    group: int
    seed: int
    memory_path: str | None
    agent: AgentConfig
    embedder: str

    @property
    def key(self) -> str:
        return f"eval/{self.env.key}/{self.arm}/{self.episode}"


@dataclass(frozen=True)
class UpdateTask:
    """Apply an update strategy to a memory after a group of episodes."""

    env: EnvConfig
    arm: str
    group: int
    strategy: str
    options: dict[str, Any]
    llm: str
    embedder: str
    path: str
    outcomes: tuple[str, ...]  # Trajectory JSON

    @property
    def key(self) -> str:
        return f"update/{self.env.key}/{self.arm}/{self.group}"


Task = CollectTask | BuildTask | EpisodeTask | UpdateTask


@dataclass
class TaskResult:
    key: str
    task: Task
    ok: bool
    value: Any = None
    error: str | None = None
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class CountingLLM:
    """Wraps an LLM to count the calls and tokens a build, update or episode spends
    (agents, skills and the judge call the LLM through ``complete`` only)."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def complete(self, messages: Sequence[Message], **kw: Any) -> Completion:
        c = self.inner.complete(messages, **kw)
        self.calls += 1
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        return c

    def __getattr__(self, name: str) -> Any:  # tokenizer helpers etc. of the backend
        return getattr(self.inner, name)


def _make_llm(spec: str) -> LLM:
    if spec.startswith("scripted"):
        # Logic tests of the runner: always answers the first admissible action.
        from memp.llm.scripted import ScriptedLLM

        return ScriptedLLM(lambda _messages: "", name=spec)
    from memp.llm import make_llm

    options: dict[str, Any] = {}
    threads = os.environ.get("MEMP_LLM_THREADS")
    if threads and (spec.startswith("local") or spec.endswith(".gguf")):
        options["n_threads"] = int(threads)
    # No completion cache: an experiment measures the model's time and tokens, and a
    # re-run resumes at episode granularity anyway.
    return make_llm(spec, cache=False, **options)


class WorkerContext:
    """Per-process cache of models, environments and open memories."""

    def __init__(self, max_memories: int = 8) -> None:
        self._llms: dict[str, LLM] = {}
        self._embedders: dict[str, Any] = {}
        self._envs: dict[str, Any] = {}
        self._memories: OrderedDict[tuple[str, str | None, str], Any] = OrderedDict()
        self._max_memories = max_memories

    def provide(
        self, *, llm: tuple[str, LLM] | None = None, embedder: tuple[str, Any] | None = None
    ) -> None:
        """Use an already loaded model for a spec (in-process runs reuse the caller's)."""
        if llm is not None:
            self._llms[llm[0]] = llm[1]
        if embedder is not None:
            self._embedders[embedder[0]] = embedder[1]

    def llm(self, spec: str) -> LLM:
        if spec not in self._llms:
            self._llms[spec] = _make_llm(spec)
        return self._llms[spec]

    def embedder(self, spec: str) -> Any:
        if spec not in self._embedders:
            from memp.embed import make_embedder

            self._embedders[spec] = make_embedder(spec)
        return self._embedders[spec]

    def env(self, cfg: EnvConfig, split: str) -> Any:
        options = cfg.options_for(split)
        key = f"{cfg.name}|{split}|{sorted(options.items())!r}"
        if key not in self._envs:
            from memp.envs import make_env

            self._envs[key] = make_env(cfg.name, split=split, **options)
        return self._envs[key]

    def memory(self, path: str, llm: LLM | None, embedder: str) -> Any:
        key = (path, getattr(llm, "name", None), embedder)
        if key in self._memories:
            self._memories.move_to_end(key)
            mem = self._memories[key]
            mem._llm = llm  # this episode's counting wrapper of the same model
            return mem
        from memp.memory import Memory

        mem = Memory(path, llm=llm, embedder=self.embedder(embedder))
        self._memories[key] = mem
        while len(self._memories) > self._max_memories:
            _, old = self._memories.popitem(last=False)
            old.close()
        return mem

    def forget_memory(self, path: str) -> None:
        for key in [k for k in self._memories if k[0] == path]:
            self._memories.pop(key).close()

    def close(self) -> None:
        for m in self._memories.values():
            m.close()
        self._memories.clear()
        for e in self._envs.values():
            with contextlib.suppress(Exception):  # closing is best effort at shutdown
                e.close()
        self._envs.clear()


def _record_metrics(traj: Trajectory, env: Env) -> None:
    """The benchmark's own per-episode metrics, where the env has them (reports aggregate
    them: a number is averaged, a [passed, total] pair summed as a ratio)."""
    if metrics := env.episode_metrics():
        traj.metadata["metrics"] = metrics


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:  # numpy is a dependency; this only guards odd installs
        pass


def retrieved_ids(traj: Trajectory) -> list[str]:
    """Procedure ids an episode retrieved, whatever shape the policy recorded them in."""
    out: list[str] = []
    for item in traj.metadata.get("retrieved") or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and item.get("id"):
            out.append(str(item["id"]))
    return out


def execute(task: Task, ctx: WorkerContext) -> TaskResult:
    """Run one task in this process; exceptions become failed results, never crashes."""
    t0 = time.perf_counter()
    try:
        value, extra = _dispatch(task, ctx)
        return TaskResult(task.key, task, True, value, None, time.perf_counter() - t0, extra)
    except Exception as e:
        msg = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"
        return TaskResult(task.key, task, False, None, msg, time.perf_counter() - t0)


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Hold the one writer's lock on a memory file while a run builds or updates it.

    Two runs building the same memory (a resumed run next to one not yet stopped) would
    each add every procedure. The lock is the kernel's: it is released when its holder
    dies, however it dies.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks
        yield
        return
    with open(path + ".lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise InvalidInput(
                f"memory {path} is being written by {holder}; stop that run (kill its "
                "process group) before resuming this one"
            ) from None
        lock.truncate(0)
        lock.write(f"process {os.getpid()}")
        lock.flush()
        yield


def _build(task: BuildTask, ctx: WorkerContext, llm: LLM | None, trajs: list[Trajectory]) -> int:
    from memp.memory import Memory

    mem = Memory(task.path, llm=llm, embedder=ctx.embedder(task.embedder))
    try:
        env = ctx.env(task.env, task.env.train_split)
        if task.build == "skills":
            from memp.skills.compile import build_skill_memory

            n = len(build_skill_memory(mem, trajs, env.semantics, env=env, distill=task.distill))
        else:
            # an interrupted build resumes: a trajectory whose procedure is stored
            # (a procedure is added after its trajectory) is not built again
            built = {p.source_trajectory_id for p in mem.list(status=None)}
            done = {
                i
                for t in mem.list_trajectories()
                if t.id in built
                for i in (t.id, t.metadata.get("distilled_from"))
            }
            n = sum(t.id in done for t in trajs)
            from memp.distill import distilled

            for traj in trajs:
                if traj.id in done:
                    continue
                if task.distill:
                    traj = distilled(traj, env.semantics, env=env)
                mem.add(traj, strategy=task.build)
                n += 1
    finally:
        mem.close()
    return n


def _dispatch(task: Task, ctx: WorkerContext) -> tuple[Any, dict[str, Any]]:
    if isinstance(task, CollectTask):
        _seed_everything(task.seed)
        env = ctx.env(task.env, task.env.train_split)
        llm = None if task.source == "expert" else ctx.llm(task.source)
        policy = make_policy(
            mode="expert" if llm is None else "prompt",
            llm=llm,
            memory=None,
            condition=None,
            agent=task.agent,
        )
        traj = policy.run(env, task.episode)
        traj.metadata.setdefault("episode", task.episode)
        traj.metadata["seed"] = task.seed
        record_task_type(traj, env, task.episode)
        if task.distill and traj.success:
            # Here rather than at build time: the replay is spread over the workers.
            from memp.distill import distill

            traj.metadata["distilled"] = distill(traj, env.semantics, env=env).model_dump(
                mode="json"
            )
        return traj.model_dump_json(), {}
    if isinstance(task, BuildTask):
        needs_llm = task.build not in ("trajectory", "skills")
        llm = CountingLLM(ctx.llm(task.builder)) if needs_llm else None
        trajs = [Trajectory.model_validate_json(b) for b in task.trajectories]
        with writing(task.path):
            n = _build(task, ctx, llm, trajs)
        tokens = {
            "prompt_tokens": llm.prompt_tokens if llm else 0,
            "completion_tokens": llm.completion_tokens if llm else 0,
        }
        return n, tokens
    if isinstance(task, EpisodeTask):
        _seed_everything(task.seed)
        c = task.condition
        env = ctx.env(task.env, task.env.eval_split)
        needs_llm = c.mode == "prompt" or c.use_llm or c.retrieve == "avefact"
        llm = CountingLLM(ctx.llm(task.model)) if needs_llm else None
        memory = None
        own = False
        if task.memory_path is not None:
            if c.retrieve == "random":
                # Random retrieval draws from the episode's seed: reproducible, and not the
                # same draw for every task.
                from memp.memory import Memory

                memory = Memory(
                    task.memory_path, llm=llm, embedder=ctx.embedder(task.embedder), seed=task.seed
                )
                own = True
            else:
                memory = ctx.memory(task.memory_path, llm, task.embedder)
        agent = task.agent
        # a benchmark with tasks of very different lengths gives each episode its own
        # budget, the same under every condition
        budget = env.step_budget(task.episode)
        if budget is not None:
            agent = agent.model_copy(update={"max_steps": budget})
        policy = make_policy(mode=c.mode, llm=llm, memory=memory, condition=c, agent=agent, env=env)
        try:
            traj = policy.run(env, task.episode)
        finally:
            if own and memory is not None:
                memory.close()
        traj.metadata.setdefault("episode", task.episode)
        traj.metadata["seed"] = task.seed
        traj.metadata["condition"] = task.arm
        if budget is not None:
            traj.metadata["step_budget"] = budget
        traj.metadata["llm_calls"] = llm.calls if llm is not None else 0
        record_task_type(traj, env, task.episode)
        _record_metrics(traj, env)
        if traj.model is None and llm is not None:
            traj.model = llm.name
        return traj.model_dump_json(), {}
    if isinstance(task, UpdateTask):
        ctx.forget_memory(task.path)
        llm = CountingLLM(ctx.llm(task.llm))
        from memp.memory import Memory

        options = dict(task.options)
        with (
            writing(task.path),
            contextlib.closing(
                Memory(task.path, llm=llm, embedder=ctx.embedder(task.embedder))
            ) as mem,
        ):
            trajs = [Trajectory.model_validate_json(blob) for blob in task.outcomes]
            if options.pop("executable", False):
                # executable memory: each episode compiles (a win, replay-verified on
                # its own game), adjusts (a followed procedure that failed) or erases
                from memp.skills.learn import learn

                env = ctx.env(task.env, task.env.eval_split)
                reports = [
                    learn(mem, t, policy=task.strategy, env=env, llm=llm, **options) for t in trajs
                ]
                report = {
                    "added": sum(len(r.added) for r in reports),
                    "strengthened": sum(len(r.strengthened) for r in reports),
                    "adjusted": sum(len(r.adjusted) for r in reports),
                    "retired": sum(len(r.retired) for r in reports),
                }
            else:
                outcomes = [Outcome(trajectory=t, used=retrieved_ids(t)) for t in trajs]
                report = mem.update(outcomes, strategy=task.strategy, **options)
        if hasattr(report, "model_dump"):
            report = report.model_dump(mode="json")
        elif not isinstance(report, dict | list | str | int | float | type(None)):
            report = repr(report)
        return report, {
            "prompt_tokens": llm.prompt_tokens,
            "completion_tokens": llm.completion_tokens,
        }
    raise TypeError(f"unknown task type {type(task).__name__}")


# One context per worker process (the process pool and Ray actors each hold their own).
_CONTEXT: WorkerContext | None = None


def process_context() -> WorkerContext:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = WorkerContext()
    return _CONTEXT


def run_in_process(task: Task) -> TaskResult:
    return execute(task, process_context())
