"""The expert policy: replays the environment's expert / gold actions.

Its trajectories are the raw material memory is built from.
"""

from __future__ import annotations

import time

from memp.agents.base import end_reason, episode_trajectory
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
                stopped = end_reason(won, truncated)
                break
        return episode_trajectory(
            env,
            episode,
            "expert",
            task=task,
            steps=steps,
            won=won,
            reward=total,
            model=None,
            retrieved=[],
            stopped=stopped,
            score=float(info.get("score", 0.0)),
        )
