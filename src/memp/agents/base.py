"""What every policy offers, and running one over an environment's episodes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from memp.errors import InvalidInput
from memp.types import Step, Trajectory

if TYPE_CHECKING:
    from memp.envs.base import Env


@runtime_checkable
class Policy(Protocol):
    """Plays one episode of an environment and returns it as a trajectory."""

    def run(self, env: Any, episode: int) -> Trajectory: ...


def episode_trajectory(
    env: Env,
    episode: int,
    policy: str,
    *,
    task: str,
    steps: list[Step],
    won: bool,
    reward: float,
    model: str | None,
    **extra: Any,
) -> Trajectory:
    """A played episode with what every policy records about it (``extra`` after that)."""
    traj = Trajectory(
        task=task,
        environment=env.name,
        steps=steps,
        success=won,
        reward=reward,
        model=model,
        metadata={
            "episode": episode,
            "env": env.name,
            "label": getattr(env, "label", env.name),
            "split": getattr(env, "split", None),
            "family": getattr(env, "family", "generic"),
            "policy": policy,
            **extra,
        },
    )
    record_task_type(traj, env, episode)
    return traj


def record_task_type(traj: Trajectory, env: Env, episode: int) -> None:
    """The benchmark's task type, where it has them: reports break results down by it,
    and memory induces one template over the variations of a type."""
    if (kind := env.task_type(episode)) is not None:
        traj.metadata.setdefault("task_type", kind)


def end_reason(won: bool, truncated: bool) -> str:
    """Why an episode the environment ended, ended."""
    return "won" if won else ("truncated" if truncated else "lost")


def parse_env_options(pairs: list[str] | None) -> dict[str, object]:
    """``["game=cookingworld", "n=5"]`` -> ``{"game": "cookingworld", "n": 5}``."""
    out: dict[str, object] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InvalidInput(f"environment option {pair!r} is not key=value")
        key, value = (x.strip() for x in pair.split("=", 1))
        parsed: object = value
        if value.lower() in ("true", "false"):
            parsed = value.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    parsed = cast(value)
                    break
                except ValueError:
                    continue
        out[key.replace("-", "_")] = parsed
    return out


def collect(
    env: Env,
    policy: Policy,
    episodes: Sequence[int],
    *,
    memory: object | None = None,
    on_episode: Callable[[int, Trajectory], None] | None = None,
) -> list[Trajectory]:
    """Run ``policy`` on ``episodes`` of ``env``; store each trajectory in ``memory``.

    ``memory``: anything with ``record(trajectory)`` (a :class:`memp.memory.Memory`).
    Trajectories are stored one by one, so an interrupted run keeps what it finished.
    """
    out: list[Trajectory] = []
    for ep in episodes:
        traj = policy.run(env, ep)
        if memory is not None:
            memory.record(traj)  # type: ignore[attr-defined]
        out.append(traj)
        if on_episode is not None:
            on_episode(ep, traj)
    return out
