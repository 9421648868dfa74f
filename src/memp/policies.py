"""Non-LLM policies with the agent's ``.run(env, episode) -> Trajectory`` shape.

:class:`ExpertPolicy` replays the environment's expert / gold actions; its
trajectories are the raw material memory is built from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from memp.envs.base import Env
from memp.errors import InvalidInput
from memp.types import Step, Trajectory


class ExpertPolicy:
    """Plays ``env.expert_actions()`` from the start of the episode.

    ``max_steps`` caps the replay (None: the whole expert sequence).
    """

    name = "expert"

    def __init__(self, *, max_steps: int | None = None) -> None:
        self.max_steps = max_steps

    def run(self, env: Env, episode: int) -> Trajectory:
        _obs, info = env.reset(episode=episode)
        task = info.get("task") or env.task
        actions = env.expert_actions()
        if not actions:
            raise InvalidInput(
                f"the {env.name} environment has no expert actions for episode {episode}; "
                "use the llm policy instead"
            )
        if self.max_steps is not None:
            actions = actions[: self.max_steps]
        steps: list[Step] = []
        won, total, stopped = bool(info.get("won", False)), 0.0, "end_of_expert"
        for action in actions:
            t0 = time.perf_counter()
            obs, reward, terminated, truncated, info = env.step(action)
            steps.append(
                Step(
                    action=action,
                    observation=obs,
                    reward=float(reward),
                    latency_s=time.perf_counter() - t0,
                    actor="expert",
                )
            )
            total += float(reward)
            won = bool(info.get("won", False))
            if terminated or truncated:
                stopped = "won" if won else ("truncated" if truncated else "lost")
                break
        return Trajectory(
            task=task,
            environment=env.name,
            steps=steps,
            success=won,
            reward=total,
            model=None,
            metadata={
                "episode": episode,
                "env": env.name,
                "label": getattr(env, "label", env.name),
                "split": getattr(env, "split", None),
                "family": getattr(env, "family", "generic"),
                "policy": "expert",
                "retrieved": [],
                "stopped": stopped,
                "score": float(info.get("score", 0.0)),
            },
        )


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
    policy: ExpertPolicy | object,
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
        traj = policy.run(env, ep)  # type: ignore[attr-defined]
        if memory is not None:
            memory.record(traj)  # type: ignore[attr-defined]
        out.append(traj)
        if on_episode is not None:
            on_episode(ep, traj)
    return out
