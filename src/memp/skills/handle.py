"""A runnable skill: one task's compiled program, stepped by whoever owns the environment.

:meth:`memp.Memory.skill` picks the procedures of the task's template, binds its slots
and hands back a :class:`Skill`. An agent loop asks it for the next action with
:meth:`Skill.next_action` and steps the environment itself; ``None`` means the skill
cannot go on (the loop may hand the episode to an LLM). :meth:`Skill.finish` counts
the outcome on the procedures it came from; :meth:`Skill.run` plays a whole episode.
:class:`Skill` is that surface; :class:`LocalSkill` steps the program in this process
and :class:`memp.client.RemoteSkill` has the memory service step it.
Stepping calls no LLM: what the actions mean comes from the environment adapter's
:class:`~memp.envs.base.ActionSemantics`. Given an LLM, :meth:`memp.Memory.skill` may use
it once, before the first step, to pick or bind a template or, where none matches, to
write the task's program from the nearest stored ones (:mod:`memp.skills.adapt`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from memp.errors import InvalidInput, NotFound
from memp.skills.priors import Priors
from memp.skills.runtime import SkillRun
from memp.template import normalize
from memp.types import Program, Step, Trajectory

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics, Env
    from memp.llm.base import LLM
    from memp.memory import Memory
    from memp.skills.runtime import ExecConfig

# (procedure ids, success) -> None: how an outcome is counted (Memory.report)
Report = Callable[[Sequence[str], bool], None]


class NoSkill(NotFound):
    """No stored executable procedure matches the task. Over HTTP: 404 with code
    ``no_skill``, which :meth:`memp.Client.skill` turns into None, as
    :meth:`memp.Memory.skill` answers."""


def no_skill(task: str, environment: str, namespace: str) -> NoSkill:
    """The error for a task no stored template matches, saying what to do."""
    return NoSkill(
        f"no executable procedure of namespace {namespace!r} matches the task {task!r} in "
        f"{environment!r}: build some from episodes of tasks like it (`memp memory add "
        f"--strategy executable --env {environment}`, or Memory.add(..., "
        "strategy='executable', env=...)), or act without a skill"
    )


class Skill:
    """What every runnable skill offers, wherever it is stepped: the program, its binding,
    the procedures it came from, :meth:`next_action`, :meth:`finish` and :meth:`run`.

    :class:`LocalSkill` steps the program in this process; :class:`memp.client.RemoteSkill`
    asks the memory service to. Code written against this class runs on either.
    """

    task: str
    procedure_ids: list[str]
    notes: dict[str, Any]
    steps_taken: int
    stopped: str | None  # why next_action returned None
    outcome: bool | None  # set by finish()
    last_info: dict[str, Any]  # what the last observation told the skill
    # an adapted program (no template matched): the record of the hand-over; the
    # outcome is not counted on its sources, whose programs did not run
    adapted: dict[str, Any] | None

    def __init__(
        self,
        *,
        task: str,
        procedure_ids: Sequence[str],
        notes: Any = None,
        adapted: dict[str, Any] | None = None,
    ) -> None:
        if not procedure_ids:
            raise InvalidInput("a skill needs the id of at least one procedure it came from")
        self.task = task
        self.adapted = adapted
        self.procedure_ids = list(procedure_ids)
        self.notes = dict(notes or {})
        self.steps_taken = 0
        self.stopped = None
        self.outcome = None
        self.last_info = {}
        self._started = False

    @property
    def program(self) -> Program:
        raise NotImplementedError

    @property
    def binding(self) -> dict[str, str]:
        raise NotImplementedError

    @property
    def pointer(self) -> int:
        """The program step the skill is on."""
        raise NotImplementedError

    @property
    def procedure_id(self) -> str:
        """The procedure whose template and program the skill plays (the best of its key)."""
        return self.procedure_ids[0]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(key={self.program.key!r}, binding={self.binding!r}, "
            f"procedure_id={self.procedure_id!r}, steps={len(self.program.steps)})"
        )

    def next_action(self, observation: str, admissible: Sequence[str] | None) -> str | None:
        """The action to take after ``observation`` (the episode's first observation on
        the first call, then what the last returned action led to), or None when the
        skill cannot go on (:attr:`stopped` says why)."""
        raise NotImplementedError

    def finish(self, success: bool) -> None:
        """Count the outcome (one success or failure) on the procedures the skill used."""
        if self.outcome is not None:
            raise InvalidInput(
                f"this skill's outcome was already reported (success={self.outcome}); "
                "get a new skill for the next episode"
            )
        self._count(bool(success))
        self.outcome = bool(success)

    def _count(self, success: bool) -> None:
        raise NotImplementedError

    def run(self, env: Env, episode: int, *, report: bool = True) -> Trajectory:
        """Play ``episode`` of ``env`` with no LLM, as the skill agent does, and (with
        ``report``) count its outcome. The episode's task must be the skill's task."""
        return play(self, env, episode, report=report)


class LocalSkill(Skill):
    """A skill stepped in this process (see the module docstring).

    ``handover_when_stuck``: stop (``next_action`` returns None) at the first program
    step that cannot be grounded, so the caller's LLM can take over; by default the
    skill skips such a step and goes on, as the no-LLM skill agent does, and stops only
    when the program is done (after one retry) or its step budget is spent.
    """

    def __init__(
        self,
        run: SkillRun,
        *,
        task: str,
        procedure_ids: Sequence[str],
        notes: dict[str, Any] | None = None,
        report: Report | None = None,
        handover_when_stuck: bool = False,
        adapted: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(task=task, procedure_ids=procedure_ids, notes=notes, adapted=adapted)
        self.handover_when_stuck = handover_when_stuck
        self._run = run
        self._report = report
        self._last: str | None = None
        self._said: dict[str, Any] = {}  # what the last decision said about its action

    # -- what it is -------------------------------------------------------------

    @property
    def program(self) -> Program:
        return self._run.program

    @property
    def binding(self) -> dict[str, str]:
        return dict(self._run.binding)

    @property
    def pointer(self) -> int:
        return self._run.ptr

    # -- stepping ---------------------------------------------------------------

    def _stop(self, reason: str) -> None:
        self.stopped = reason
        return None

    def next_action(self, observation: str, admissible: Sequence[str] | None) -> str | None:
        if self.stopped is not None:
            return None
        run = self._run
        adm = list(admissible or [])
        if not self._started:
            run.start(observation, adm)
            self._started = True
        elif self._last is not None:
            # the decision's record goes in (a read step reads, a deferred step is done)
            self.last_info = dict(self._said)
            run.observe(self._last, observation, adm, self.last_info)
        if self.steps_taken >= run.config.max_steps:
            return self._stop("step budget spent")
        while True:
            if run.finished and run.config.retry and not run.retried:
                run.restart()
            if run.finished:
                return self._stop("program finished without success")
            d = run.decide(None)
            if d.action is not None:
                self._last, self._said = d.action, dict(d.info)
                self.steps_taken += 1
                return d.action
            reason = str(d.info.get("stuck") or "no admissible action carries out the step")
            if self.handover_when_stuck:
                return self._stop(f"skill stuck: {reason}")
            run.move_to(run.ptr + 1)  # nothing left to try on this step: the rest of the program
            if run.finished:
                return self._stop(f"skill stuck: {reason}")

    def _count(self, success: bool) -> None:
        if self._report is not None and self.adapted is None:
            self._report(self.procedure_ids, success)


def play(skill: Skill, env: Env, episode: int, *, report: bool = True) -> Trajectory:
    """:meth:`Skill.run`: the caller's loop, stepping ``env`` with the actions ``skill``
    gives (in this process or from the service)."""
    from memp.agents.skill import _admissible

    if skill._started:
        raise InvalidInput("this skill has already played; get a new skill for the next episode")
    obs, info = env.reset(episode=episode)
    task = info.get("task") or env.task
    if normalize(task) != normalize(skill.task):
        raise InvalidInput(
            f"episode {episode} of {env.name} is the task {task!r}, not this skill's "
            f"task {skill.task!r}; get the skill with Memory.skill(<that task>, env=env)"
        )
    traj = Trajectory(task=task, environment=env.name)
    traj.metadata.update(
        episode=episode,
        label=getattr(env, "label", env.name),
        split=getattr(env, "split", None),
        policy="skill",
        retrieved=skill.procedure_ids,
        program_key=skill.program.key,
        binding=skill.binding,
        program_steps=len(skill.program.steps),
    )
    if skill.adapted is not None:  # learn() compiles a win with its provenance
        traj.metadata["adapted"] = skill.adapted
    won = bool(info.get("won"))
    while not won:
        action = skill.next_action(obs, _admissible(info, env))
        if action is None:
            traj.metadata["stop"] = skill.stopped
            break
        if traj.steps:
            traj.steps[-1].info.update(skill.last_info)
        obs, reward, terminated, truncated, info = env.step(action)
        won = bool(info.get("won"))
        traj.steps.append(Step(action=action, observation=obs, reward=float(reward), actor="skill"))
        if terminated or truncated:
            break
    traj.success = won
    traj.reward = float(info.get("score", 0.0) or 0.0)
    traj.metadata["pointer"] = skill.pointer
    if report:
        skill.finish(won)
    return traj


def skill_for(
    memory: Memory,
    task: str,
    environment: str,
    semantics: ActionSemantics,
    config: ExecConfig,
    handover_when_stuck: bool = False,
    llm: LLM | None = None,
    admissible: Sequence[str] | None = None,
) -> Skill | None:
    """:meth:`memp.Memory.skill`: the skill agent's choice of program and binding for
    ``task``, ready to step; None when no stored template matches the task and no
    program could be adapted (adaptation needs ``llm`` and ``config.adapt``)."""
    from memp.agents.skill import SkillAgent

    agent = SkillAgent(memory, llm, config=config)
    program, binding, ids, notes, out = agent.choose(
        task, environment, semantics, list(admissible or [])
    )
    adapted = None
    if out is not None and out.program is not None and program is out.program:
        # a skill names the procedures it came from: an adapted one, its sources
        adapted = out.record()
        ids, notes = list(out.sources), {**notes, "adapted": adapted}
    if program is None or binding is None or not ids:
        return None
    _, priors = agent._procedures(environment)  # the priors select() gathered
    reveal = set(program.reveal) | priors.reveal_templates
    run = SkillRun(
        program, binding, semantics, priors if config.priors else Priors(), config, reveal=reveal
    )
    return LocalSkill(
        run,
        task=task,
        procedure_ids=ids,
        notes=notes,
        report=lambda pids, ok: memory.report(pids, success=ok),
        handover_when_stuck=handover_when_stuck,
        adapted=adapted,
    )
