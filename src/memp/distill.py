"""Trajectory distillation: keep the steps that did the task, check by replay.

Expert walkthroughs wander (look, examine, open-and-close every cabinet on the way,
walk past three places to reach a fourth). Before a trajectory becomes memory it is
shortened: no-ops and failed actions go, visits that found nothing used later go
(with the opening and closing done there), and runs of moves collapse to the last
one. Where the environment can replay the episode, the shortened trajectory is
replayed and kept only if it still wins; otherwise a gentler shortening is tried,
and at worst the original is kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memp.skills.text import Mentions, abstract, read_span, words
from memp.template import normalize
from memp.types import Step, Trajectory

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics, Env


def _mentions(steps: list[Step], semantics: ActionSemantics) -> Mentions:
    """Every name the steps' observations and places show."""
    mentions = Mentions(semantics)
    for s in steps:
        mentions.observe(s.action, s.observation)
    return mentions


def _drop_noise(steps: list[Step], semantics: ActionSemantics, task: str = "") -> list[Step]:
    keep = _readings_used_later(steps, semantics, task)
    return [
        s
        for i, s in enumerate(steps)
        if i in keep
        or semantics.is_navigation(s.action)
        or not (semantics.is_noop(s.action) or semantics.failed(s.action, s.observation))
    ]


def _readings_used_later(
    steps: list[Step], semantics: ActionSemantics, task_text: str = ""
) -> set[int]:
    """No-op steps whose observation told a value a later action uses (reading the recipe).

    The value is what stays literal in the later action once the entities the
    environment reports are abstracted: an ingredient named only in a cookbook.
    """
    mentions = _mentions(steps, semantics)
    # the actions that do something, abstracted once: (index, abstract action)
    acting = [
        (i, abstract(s.action, mentions, place=None, slot_of_type={})[0])
        for i, s in enumerate(steps)
        if not (semantics.is_noop(s.action) or semantics.is_navigation(s.action))
    ]
    keep: set[int] = set()
    task = set(words(task_text))
    for i, s in enumerate(steps):
        if not semantics.is_noop(s.action) or semantics.failed(s.action, s.observation):
            continue
        reading = [(normalize(s.action), words(s.observation))]
        known = set(words(s.action)) | task
        if any(read_span(abs_a, reading, known) is not None for j, abs_a in acting if j > i):
            keep.add(i)
    return keep


def _drop_detours(steps: list[Step], semantics: ActionSemantics) -> list[Step]:
    """Remove visits whose actions only touched the place and found nothing used later."""
    mentions = _mentions(steps, semantics)
    # segments: a navigation step and what was done there before the next one
    segments: list[list[int]] = []
    for i, s in enumerate(steps):
        if semantics.is_navigation(s.action) or not segments:
            segments.append([i])
        else:
            segments[-1].append(i)
    later_used: list[set[str]] = [set() for _ in segments]
    acc: set[str] = set()
    for j in range(len(segments) - 1, -1, -1):
        later_used[j] = set(acc)
        for i in segments[j]:
            if not semantics.is_navigation(steps[i].action):
                acc |= mentions.named(steps[i].action)
    keep: list[int] = []
    for j, seg in enumerate(segments):
        head = steps[seg[0]]
        if not semantics.is_navigation(head.action) or j == len(segments) - 1:
            keep.extend(seg)
            continue
        place = normalize(semantics.location(head.action) or "")
        place_only = all(mentions.named(steps[i].action) <= {place} for i in seg[1:])
        seen_here = {
            normalize(n) for i in seg for n in semantics.seen_objects(steps[i].observation)
        }
        if place_only and not (seen_here - {place}) & later_used[j]:
            continue
        keep.extend(seg)
    return [steps[i] for i in keep]


def _drop_place_only(steps: list[Step], semantics: ActionSemantics) -> list[Step]:
    """Remove actions on the current place that revealed nothing (closing a door behind you)."""
    mentions = _mentions(steps, semantics)
    out: list[Step] = []
    place = ""
    for i, s in enumerate(steps):
        if semantics.is_navigation(s.action):
            place = normalize(semantics.location(s.action) or "")
        elif i < len(steps) - 1:
            named = mentions.named(s.action)
            if named and named <= {place} and not semantics.seen_objects(s.observation):
                continue
        out.append(s)
    return out


def _collapse_moves(steps: list[Step], semantics: ActionSemantics) -> list[Step]:
    out: list[Step] = []
    for i, s in enumerate(steps):
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        if (
            nxt is not None
            and semantics.is_navigation(s.action)
            and semantics.is_navigation(nxt.action)
        ):
            continue
        out.append(s)
    return out


def shorten(
    trajectory: Trajectory,
    semantics: ActionSemantics,
    *,
    detours: bool = True,
    place_only: bool = True,
) -> Trajectory:
    """A shorter copy of ``trajectory`` (observations as recorded, not re-verified).

    ``detours``: drop visits that found nothing used later; ``place_only``: drop
    actions on the current place that showed nothing (these two are the guesses
    replay must confirm; no-ops and failed actions always go).
    """
    steps = _drop_noise(list(trajectory.steps), semantics, trajectory.task)
    if detours:
        steps = _drop_detours(steps, semantics)
    if place_only:
        steps = _drop_place_only(steps, semantics)
    steps = _collapse_moves(steps, semantics)
    out = trajectory.model_copy(deep=True)
    out.steps = [s.model_copy(deep=True) for s in steps]
    return out


def replay(env: Env, episode: int, actions: list[str]) -> tuple[bool, list[Step], str]:
    """Play ``actions`` in ``episode``; (won, steps with fresh observations, first observation)."""
    obs0, info = env.reset(episode=episode)
    steps: list[Step] = []
    won = bool(info.get("won"))
    for a in actions:
        if won:
            break
        obs, reward, terminated, truncated, info = env.step(a)
        steps.append(Step(action=a, observation=obs, reward=float(reward), actor="expert"))
        won = bool(info.get("won"))
        if terminated or truncated:
            break
    return won, steps, obs0


def distill(
    trajectory: Trajectory,
    semantics: ActionSemantics,
    *,
    env: Env | None = None,
    episode: int | None = None,
) -> Trajectory:
    """Shorten ``trajectory``; with ``env`` (and the episode index), keep only what replays to a win.

    The result records ``distilled_from`` and ``verified`` (True / False = kept the
    original because no shortening replayed / None = no replay possible) in metadata.
    """
    ep = episode if episode is not None else trajectory.metadata.get("episode")
    attempts = [
        shorten(trajectory, semantics),
        shorten(trajectory, semantics, place_only=False),
        shorten(trajectory, semantics, detours=False, place_only=False),
    ]
    meta: dict[str, Any] = {"distilled_from": trajectory.id, "raw_steps": len(trajectory.steps)}
    if env is None or ep is None:
        out = attempts[0]
        out.metadata.update(meta, verified=None)
        return out
    for cand in attempts:
        won, steps, obs0 = replay(env, int(ep), cand.actions)
        if won:
            cand.steps = steps
            cand.success = True
            cand.metadata.update(meta, verified=True, initial_observation=obs0)
            return cand
    out = trajectory.model_copy(deep=True)
    out.metadata.update(meta, verified=False)
    return out


def distilled(
    trajectory: Trajectory, semantics: ActionSemantics, *, env: Env | None = None
) -> Trajectory:
    """The distilled version recorded when the episode was played, else :func:`distill` now.

    Distilling replays the episode, which on the official ALFWorld games costs as much as
    playing it (the engine grounds the PDDL problem on every reset): doing it where the
    episode is played spreads it over the workers, and a build of thousands of
    trajectories is then only compiling and embedding.
    """
    stored = trajectory.metadata.get("distilled")
    if isinstance(stored, dict):
        return Trajectory.model_validate(stored)
    return distill(trajectory, semantics, env=env)


def expert_trajectory(env: Env, episode: int, *, max_steps: int = 200) -> Trajectory:
    """Play the environment's expert / gold actions for ``episode`` and record them."""
    obs0, info = env.reset(episode=episode)
    actions = env.expert_actions() or []
    traj = Trajectory(task=info.get("task") or env.task, environment=env.name)
    traj.metadata.update(
        episode=episode,
        split=getattr(env, "split", None),
        policy="expert",
        initial_observation=obs0,
    )
    won = bool(info.get("won"))
    for a in actions[:max_steps]:
        obs, reward, terminated, truncated, info = env.step(a)
        traj.steps.append(Step(action=a, observation=obs, reward=float(reward), actor="expert"))
        won = bool(info.get("won"))
        if won or terminated or truncated:
            break
    traj.success = won
    traj.reward = float(info.get("score", 0.0) or 0.0)
    return traj
