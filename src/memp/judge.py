"""An LLM judge of an episode's outcome, for environments that report no reward.

Online learning needs to know whether an episode succeeded. Where the environment says
(a reward, ``won``), that is the outcome; where it does not, :func:`judge` asks an LLM
whether the steps did what the task asked. The answer is constrained to yes / no, so a
small local model answers in one token. ``bench/judge_agreement.py`` measures how often
the judge agrees with the true reward on recorded ALFWorld episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from memp.errors import InvalidInput
from memp.llm.base import LLM, Message
from memp.types import Trajectory

_SYSTEM = (
    "You check whether an agent completed its task. You see the task and the agent's "
    "last actions with what the environment answered. Answer yes only if the actions "
    "did everything the task asks, in full; otherwise answer no."
)


@dataclass(frozen=True)
class Judgement:
    success: bool
    prompt_tokens: int
    completion_tokens: int


def _question(trajectory: Trajectory, last_steps: int) -> Message:
    steps = trajectory.steps[-last_steps:]
    shown = "\n".join(f"> {s.action}\n{s.observation.strip()}" for s in steps) or "(no step)"
    skipped = len(trajectory.steps) - len(steps)
    head = f"({skipped} earlier steps not shown)\n" if skipped else ""
    return {
        "role": "user",
        "content": f"Task: {trajectory.task}\n\n{head}{shown}\n\nDid the agent complete the "
        "task? Answer yes or no.",
    }


def judge(
    llm: LLM,
    trajectory: Trajectory,
    *,
    last_steps: int = 20,
    example: Trajectory | None = None,
) -> Judgement:
    """Whether ``trajectory`` completed its task, as ``llm`` reads its last steps.

    ``example``: an episode of a task of the same kind known to have succeeded (memory
    holds them), shown first, so the model sees what a finished task looks like in
    this environment; a small model told only the rule answers no to everything.
    """
    if not isinstance(trajectory, Trajectory):
        raise InvalidInput(f"judge() takes a memp.Trajectory, got {type(trajectory).__name__}")
    if example is not None and not isinstance(example, Trajectory):
        raise InvalidInput(f"example must be a memp.Trajectory, got {type(example).__name__}")
    messages: list[Message] = [{"role": "system", "content": _SYSTEM}]
    if example is not None:
        messages += [_question(example, last_steps), {"role": "assistant", "content": "yes"}]
    messages.append(_question(trajectory, last_steps))
    c = llm.complete(messages, max_tokens=3, temperature=0.0, choices=["yes", "no"])
    return Judgement(c.text.strip().lower() == "yes", c.prompt_tokens, c.completion_tokens)
