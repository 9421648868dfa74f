"""The skill agent: retrieved procedures run as skills, the LLM only where they do not reach.

A task's template picks the procedures (exact template match, or the LLM judging
whether a close one means the same task), its slots are bound by aligning the task
with the template (or by the LLM), and the compiled program plays the episode
(:class:`memp.skills.runtime.SkillRun`). The LLM is handed the episode where the
skill stops: ties between genuinely different actions, a step that keeps failing or
stalls, a program that ended without success, a task no procedure covers. Every
hand-over is recorded on the steps.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from memp.agents.base import record_task_type
from memp.skills.adapt import (
    Adapted,
    action_grammar,
    adapt_program,
    bind_near,
    one_word_apart,
)
from memp.skills.compile import compile_program, describe, step_text
from memp.skills.priors import Priors
from memp.skills.runtime import ExecConfig, SkillRun
from memp.skills.text import (
    Mentions,
    distinguishing_words,
    key_words,
    similarity,
    template_conflict,
    verb,
)
from memp.template import (
    KeyMatch,
    align,
    fill,
    induce,
    mask,
    match_key,
    normalize,
    rank_keys,
    slots_of,
)
from memp.types import Procedure, Program, Step, Trajectory

if TYPE_CHECKING:
    from memp.embed.base import Embedder
    from memp.envs.base import ActionSemantics, Env
    from memp.llm.base import LLM, Message

_LLM_CHOICES = 80  # actions offered to the LLM when it acts for the skill
# a gap in cosine similarity to the task that sets the things it means apart (animals
# ~0.26 against ~0.14 for the rest of a ScienceWorld room with the local embedder)
_CLEAR_DROP = 0.05


def _admissible(info: dict[str, Any], env: Env) -> list[str]:
    return list(info.get("admissible") or env.admissible_actions() or [])


def _known(priors: Priors, semantics: ActionSemantics) -> set[str]:
    """Entity names a task's words may bind to: the types memory saw or visited, and
    the names the environment declares up front (its rooms)."""
    return set(priors.found) | set(priors.visits) | {normalize(n) for n in semantics.known_names()}


def _induce_by_type(procs: list[Procedure]) -> dict[str, set[str]]:
    """Templates induced over the variations of each task type the environment names
    (:func:`memp.template.induce`): where the stored keys of one type differ in a
    parameter the masking left literal ("the red box" / "the green box"), a new
    variation ("the orange box") aligns with the induced key."""
    by_type: dict[str, set[str]] = {}
    for p in procs:
        task_type = p.trajectory.metadata.get("task_type") if p.trajectory else None
        if task_type and p.task_key:
            by_type.setdefault(str(task_type), set()).add(p.task_key)
    induced: dict[str, set[str]] = {}
    for keys in by_type.values():
        key = induce(sorted(keys))
        if key is not None and key not in keys:
            induced.setdefault(key, set()).update(keys)
    return induced


def _add_tokens(total: dict[str, int], prompt: int, completion: int) -> None:
    total["prompt"] += prompt
    total["completion"] += completion


class SkillAgent:
    """Runs compiled procedures as skills; the LLM only where they do not reach.

    ``SkillAgent(memory, llm=None, config=ExecConfig(), fallback=None).run(env, episode)``
    returns a :class:`Trajectory` like every other policy. ``fallback`` is the policy
    for tasks with no procedure of their template (a ``ReActAgent`` with prompt memory
    by default when an LLM is given). ``retrieve_options`` (``Memory.retrieve``'s
    strategy, k, ...) choose the procedures when ``config.template_retrieval`` is off,
    so the retrieval policies compare in executable mode too.
    """

    def __init__(
        self,
        memory: Any,
        llm: LLM | None = None,
        *,
        config: ExecConfig | None = None,
        fallback: Any | None = None,
        embedder: Embedder | None = None,
        retrieve_options: dict[str, Any] | None = None,
    ) -> None:
        self.memory = memory
        self.llm = llm
        self.config = config or ExecConfig()
        self.retrieve_options = dict(retrieve_options or {})
        self.fallback = fallback
        self.embedder = embedder if embedder is not None else getattr(memory, "embedder", None)
        # environment -> (procedure ids, procedures, priors, induced template -> the
        # stored templates it covers)
        self._cache: dict[
            str, tuple[tuple[str, ...], list[Procedure], Priors, dict[str, set[str]]]
        ] = {}

    # -- memory side ------------------------------------------------------

    def _procedures(self, environment: str) -> tuple[list[Procedure], Priors]:
        try:
            procs = list(self.memory.list(environment=environment))
        except TypeError:
            procs = [p for p in self.memory.list() if p.environment == environment]
        cached = self._cache.get(environment)
        # keyed on the ids: an update may add one procedure and retire another
        ids = tuple(p.id for p in procs)
        if cached and cached[0] == ids:
            return cached[1], cached[2]
        self._cache[environment] = (ids, procs, self._priors(procs), _induce_by_type(procs))
        return procs, self._cache[environment][2]

    def _induced_keys(self, environment: str) -> dict[str, set[str]]:
        """The templates induced over the stored variations of each task type, as the
        last :meth:`_procedures` call for ``environment`` gathered them."""
        return self._cache[environment][3]

    def _priors(self, procs: list[Procedure]) -> Priors:
        priors = Priors(embedder=self.embedder if self.config.embed_priors else None)
        for p in procs:
            if p.program is None:
                continue
            if p.program.priors is not None:
                priors.merge(p.program.priors)
            # how to look inside a place is a fact about the environment, not the task
            priors.reveal_templates.update(p.program.reveal)
        return priors

    def select(
        self, task: str, environment: str, semantics: ActionSemantics
    ) -> tuple[Program | None, dict[str, str] | None, list[str], dict[str, Any]]:
        """Pick and compile the program for ``task``: (program, binding, procedure ids, notes)."""
        cfg = self.config
        procs, priors = self._procedures(environment)
        procs = [p for p in procs if p.task_key and (p.trajectory is not None or p.program)]
        notes: dict[str, Any] = {}
        if not procs:
            return None, None, [], {"reason": "no procedures"}
        known = _known(priors, semantics)
        chosen: list[Procedure]
        binding: dict[str, str] | None
        if cfg.template_retrieval:
            keys = [p.task_key for p in procs if p.task_key]
            m = match_key(task, keys, known_entities=known, approximate=cfg.approximate_keys)
            induced = self._induced_keys(environment)
            if (m is None or not m.exact) and induced:
                # a new variation of a stored task type, where no stored key fits exactly
                m = match_key(task, list(induced), known_entities=known) or m
            if m is not None and not m.exact:
                # a resemblance is not enough: the words that name the task type must agree
                why = template_conflict(mask(task, known)[0], m.key, keys)
                if why is not None:
                    notes["refused_key"] = {m.key: why}
                    m = None
            if m is None and cfg.bind_llm and self.llm is not None:
                m, tokens = self._llm_pick_key(task, procs, known)
                notes["handover_bind"] = tokens
            if m is None:
                return None, None, [], {"reason": "no template matches the task"}
            key, binding = m.key, m.binding
            notes["key_match"] = "exact" if m.exact else f"approximate {m.score:.2f}"
            covered = induced.get(key, {key})
            chosen = [p for p in procs if p.task_key in covered]
            chosen.sort(key=lambda p: (-(p.usage.success_rate or 0.0), -p.created_at.timestamp()))
        else:
            opts = {"k": max(cfg.compile_k, 1), **self.retrieve_options}
            hits = self.memory.retrieve(task, environment=environment, **opts)
            if not hits:
                return None, None, [], {"reason": "nothing retrieved"}
            key = hits[0].procedure.task_key or normalize(hits[0].procedure.task)
            chosen = [h.procedure for h in hits if h.procedure.task_key == key]
            binding = None
        if not cfg.bind_align:
            binding = None
        elif binding is None:
            binding = align(task, key)
        if binding is None and cfg.bind_llm and self.llm is not None:
            binding, tokens = self._llm_bind(task, key)
            prev = notes.get("handover_bind") or {}
            notes["handover_bind"] = {k: v + prev.get(k, 0) for k, v in tokens.items()}
        if binding is None:
            # last resort: the task's own words that name known entities, by order
            _, binding = mask(task, known)
            if set(binding) != set(slots_of(key)):
                binding = {s: "" for s in slots_of(key)}
            notes["bind"] = "vocabulary"
        chosen = chosen[: max(cfg.compile_k, 1)]
        trajs = [p.trajectory for p in chosen if p.trajectory is not None]
        if trajs:
            program = compile_program(trajs, semantics, key=key, generalize=cfg.compile)
        elif chosen[0].program is not None:
            program = chosen[0].program.model_copy(deep=True)
        else:
            return None, None, [], {"reason": "procedure has neither trajectory nor program"}
        notes["key"] = key
        return program, binding, [p.id for p in chosen], notes

    def choose(
        self,
        task: str,
        environment: str,
        semantics: ActionSemantics,
        admissible: list[str] | None = None,
    ) -> tuple[Program | None, dict[str, str] | None, list[str], dict[str, Any], Adapted | None]:
        """:meth:`select`, then, where no template matches and the config allows it,
        :meth:`adapt`: (program, binding, ids of the procedures it follows, notes, what
        adaptation produced). An adapted program follows no stored procedure."""
        program, binding, used_ids, notes = self.select(task, environment, semantics)
        adapted: Adapted | None = None
        if (program is None or binding is None) and self.config.adapt and self.llm is not None:
            adapted, binding = self.adapt(task, environment, semantics, admissible)
            if adapted is not None and adapted.program is not None and binding is not None:
                program, used_ids = adapted.program, []
                notes = {**notes, "key": adapted.key}
                # what the LLM spent writing it is the episode's, on its first step
                prev = notes.get("handover_bind") or {}
                notes["handover_bind"] = {k: v + prev.get(k, 0) for k, v in adapted.tokens.items()}
            elif adapted is not None:
                notes = {**notes, "reason": f"adapted program refused: {adapted.reason}"}
        return program, binding, used_ids, notes, adapted

    def adapt(
        self,
        task: str,
        environment: str,
        semantics: ActionSemantics,
        admissible: list[str] | None = None,
    ) -> tuple[Adapted | None, dict[str, str] | None]:
        """No template matches ``task``: the LLM writes its program from the nearest
        stored programs (:mod:`memp.skills.adapt`). Returns (what adaptation produced,
        the task's binding), or (None, None) when there is nothing to adapt from."""
        if self.llm is None:
            return None, None
        procs, priors = self._procedures(environment)
        procs = [p for p in procs if p.task_key and p.program is not None]
        known = _known(priors, semantics)
        # and what the episode shows (its places), by type
        mentions = Mentions(semantics)
        for a in admissible or []:
            mentions.observe(a, "")
        known |= {mentions.type_of(n) for n in mentions.names}
        if not procs:
            return None, None
        # the nearest templates by wording, one procedure each (the best of its key)
        best: dict[str, Procedure] = {}
        for p in sorted(procs, key=lambda p: -(p.usage.success_rate or 0.0)):
            best.setdefault(str(p.task_key), p)
        task_key, binding = mask(task, known)
        near = bind_near(task, best)
        if near is not None and len(near[1]) > len(binding):
            # things memory has never seen: bound by a template one word away
            task_key, binding = near
        if not binding:
            return None, None
        known |= set(binding.values())
        ranked = [k for _, k in rank_keys(task, list(best), known_entities=known)]
        # nearest first: a template one word away from the task ("heat" for "cool")
        # shows the steps and the one to change
        # then templates with no task-type word the task lacks: "put a {object} in
        # {target}" rather than "heat some {object} ..." for "find two {object} ..."
        defining = distinguishing_words(best)
        task_words = set(key_words(task_key))
        ranked.sort(
            key=lambda k: (
                not one_word_apart(task_key, k),
                len((set(key_words(k)) & defining) - task_words),
            )
        )
        sources = [best[k] for k in ranked[: max(self.config.adapt_k, 1)]]
        if not sources:
            return None, None
        grammar = action_grammar(
            semantics, procs, admissible=admissible or [], task_key=task_key, sources=sources
        )
        out = adapt_program(
            self.llm, task_key, sources, grammar, constrained=self.config.adapt_constrained
        )
        return out, binding

    def _ask(self, msgs: list[Message], used: dict[str, int], **kw: Any) -> str:
        assert self.llm is not None
        c = self.llm.complete(msgs, **kw)
        _add_tokens(used, c.prompt_tokens, c.completion_tokens)
        return c.text

    def _llm_pick_key(
        self, task: str, procs: list[Procedure], known: set[str]
    ) -> tuple[KeyMatch | None, dict[str, int]]:
        """No stored template aligns: ask the LLM whether one means the same task."""
        masked, binding = mask(task, known)
        # the closest few by wording, closest first: a short list the model can judge
        stored = [p.task_key for p in procs if p.task_key]
        ranked = rank_keys(task, stored, known_entities=known)
        # only templates whose distinguishing words agree with the task are put to the
        # model: a 1.5B model says "yes" to "clean ..." for "cool ..." (issue 15)
        distinct = distinguishing_words(stored)
        keys = [k for _, k in ranked[:3] if template_conflict(masked, k, stored, distinct) is None]
        if not keys or not binding:
            return None, {}
        used = {"prompt": 0, "completion": 0}
        for key in keys[:2]:
            msgs: list[Message] = [
                {"role": "system", "content": "Answer yes or no."},
                {
                    "role": "user",
                    "content": f"Task A: {masked}\nTask B: {key}\n"
                    "Do A and B ask for the same thing (same steps, only worded differently)?",
                },
            ]
            answer = self._ask(msgs, used, max_tokens=3, choices=["yes", "no"])
            if answer.strip().lower() == "yes" and set(slots_of(key)) == set(binding):
                return KeyMatch(key, binding, 0.0, False), used
        return None, used

    def _llm_bind(self, task: str, key: str) -> tuple[dict[str, str] | None, dict[str, int]]:
        """Ask the LLM which words of the task fill each slot (answers limited to task phrases)."""
        words = normalize(task).split()
        phrases = sorted(
            {" ".join(words[i : i + n]) for n in (1, 2, 3) for i in range(len(words) - n + 1)}
        )
        binding: dict[str, str] = {}
        used = {"prompt": 0, "completion": 0}
        for slot in slots_of(key):
            msgs: list[Message] = [
                {
                    "role": "system",
                    "content": "Fill the slot of a task template with words from the task.",
                },
                {
                    "role": "user",
                    "content": f"Template: {key}\nTask: {normalize(task)}\nWhich words of the task fill {{{slot}}}?",
                },
            ]
            binding[slot] = normalize(self._ask(msgs, used, max_tokens=12, choices=phrases))
        return binding, used

    # -- the episode ------------------------------------------------------

    def run(self, env: Env, episode: int) -> Trajectory:
        cfg = self.config
        sem = env.semantics
        obs, info = env.reset(episode=episode)
        task = info.get("task") or env.task
        program, binding, used_ids, notes, adapted = self.choose(
            task, env.name, sem, _admissible(info, env)
        )
        if program is None or binding is None:
            out = self._fallback_episode(env, episode, task, notes.get("reason", "no procedure"))
            if adapted is not None:
                out.metadata["adapted"] = adapted.record()
            spent = notes.get("handover_bind") or {}
            # asking the LLM for a template counts, even when none fitted
            out.prompt_tokens += spent.get("prompt", 0)
            out.completion_tokens += spent.get("completion", 0)
            return out
        _, priors = self._procedures(env.name)
        # how to look inside places comes with the memory even when searches ignore priors
        reveal = set(program.reveal) | priors.reveal_templates
        run = SkillRun(
            program, binding, sem, priors if cfg.priors else Priors(), cfg, reveal=reveal
        )
        run.start(obs, _admissible(info, env))
        traj = Trajectory(task=task, environment=env.name, model=getattr(self.llm, "name", None))
        traj.metadata.update(
            episode=episode,
            label=getattr(env, "label", env.name),
            split=getattr(env, "split", None),
            policy="skill",
            retrieved=used_ids,
            program_key=notes.get("key"),
            binding=binding,
            program_steps=len(program.steps),
            notes={k: v for k, v in notes.items() if k != "handover_bind"},
        )
        record_task_type(traj, env, episode)
        if adapted is not None:
            # the hand-over: which procedures it came from, the lines, the tokens; the
            # program itself so that a win can be stored (memp.skills.learn)
            traj.metadata["adapted"] = adapted.record()
            traj.metadata["policy"] = "skill(adapted)"
            traj.metadata["program"] = program.model_dump(mode="json")
        tiebreak = self._tiebreak if cfg.llm_tiebreak and self.llm is not None else None
        llm_budget = cfg.llm_steps if cfg.llm_recovery and self.llm is not None else 0
        pending_tokens = (notes.get("handover_bind") or {}).copy()
        won = bool(info.get("won"))
        llm_left = 0
        llm_reason = ""
        while not won and len(traj.steps) < cfg.max_steps:
            actor = "skill"
            step_info: dict[str, Any] = {}
            pt = ct = 0
            if llm_left == 0 and run.finished and cfg.retry and not run.retried:
                run.restart()
            can_recover = llm_budget > 0
            if llm_left == 0 and run.finished:
                if not can_recover:
                    traj.metadata["stop"] = "program finished without success"
                    break
                llm_left, llm_reason = llm_budget, "program finished without success"
            action: str | None = None
            if llm_left == 0:
                d = run.decide(tiebreak)
                action = d.action
                step_info.update(d.info)
                pt, ct = d.tokens
                if (
                    action is None
                    or run.fails >= cfg.recover_after
                    or run.on_step >= cfg.stall_after
                ):
                    reason = d.info.get("stuck") or (
                        "step keeps failing" if run.fails >= cfg.recover_after else "stalled"
                    )
                    if can_recover:
                        llm_left, llm_reason = min(cfg.recovery_steps, llm_budget), reason
                        action = None
                    elif action is None:
                        # no LLM and nothing left to try: skip to the rest of the program
                        run.move_to(run.ptr + 1)
                        if run.finished:
                            traj.metadata["stop"] = f"skill stuck: {reason}"
                            break
                        continue
            if llm_left > 0:
                first = not traj.steps or traj.steps[-1].actor != "llm"
                action, pt2, ct2 = self._llm_act(run, task, traj)
                pt, ct = pt + pt2, ct + ct2
                actor = "llm"
                step_info = {"handover": llm_reason} if first else {"llm": llm_reason}
                llm_left -= 1
                llm_budget -= 1
                if llm_left == 0 and not run.finished:
                    run.move_to(run.ptr)  # the skill resumes this step afresh
            assert action is not None
            obs, reward, terminated, truncated, info = env.step(action)
            won = bool(info.get("won"))
            if actor == "skill" and traj.steps and traj.steps[-1].actor == "llm":
                step_info["handover"] = "resume skill"
            if pending_tokens:
                pt += pending_tokens.get("prompt", 0)
                ct += pending_tokens.get("completion", 0)
                if adapted is not None:
                    step_info["handover"] = "program adapted by llm"
                else:
                    step_info["bind_by"] = "llm"
                pending_tokens = {}
            traj.steps.append(
                Step(
                    action=action,
                    observation=obs,
                    reward=float(reward),
                    actor=actor,  # type: ignore[arg-type]
                    prompt_tokens=pt,
                    completion_tokens=ct,
                    info=step_info,
                )
            )
            run.observe(action, obs, _admissible(info, env), step_info)
            traj.steps[-1].info.update(step_info)  # what the step read, recorded on it
            if terminated or truncated:
                break
        traj.success = won
        traj.reward = float(info.get("score", 0.0) or 0.0)
        traj.metadata["pointer"] = run.ptr
        traj.prompt_tokens = sum(s.prompt_tokens for s in traj.steps)
        traj.completion_tokens = sum(s.completion_tokens for s in traj.steps)
        return traj

    def _fallback_episode(self, env: Env, episode: int, task: str, reason: str) -> Trajectory:
        cfg = self.config
        agent = self.fallback
        if agent is None and cfg.llm_fallback and self.llm is not None:
            from memp.agents.react import ReActAgent

            agent = ReActAgent(self.llm, memory=self.memory, max_steps=cfg.max_steps)
        if agent is None or not cfg.llm_fallback:
            traj = Trajectory(task=task, environment=env.name, success=False)
            traj.metadata.update(
                episode=episode, policy="skill", retrieved=[], stop=f"no skill: {reason}"
            )
            return traj
        traj = agent.run(env, episode)
        for s in traj.steps:
            s.actor = s.actor or "llm"
        if traj.steps:
            traj.steps[0].info["handover"] = f"no skill: {reason}"
        traj.metadata["policy"] = "skill->fallback"
        traj.metadata["handover"] = reason
        return traj

    # -- the LLM's turns ------------------------------------------------------

    def _tiebreak(
        self, run: SkillRun, best: list[str]
    ) -> tuple[str, dict[str, Any], tuple[int, int]]:
        step = run.current
        assert step is not None
        msgs: list[Message] = [
            {"role": "system", "content": "Pick the action that best carries out the step."},
            {
                "role": "user",
                "content": f"Step: {fill(str(step.action), run.binding)}\n"
                f"Last observation: {run.last_obs[-400:]}\nActions:\n" + "\n".join(best),
            },
        ]
        used = {"prompt": 0, "completion": 0}
        text = self._ask(msgs, used, max_tokens=24, choices=best)
        pick = text if text in best else best[0]
        info = {"tiebreak": "llm", "handover": "tie between candidates"}
        return pick, info, (used["prompt"], used["completion"])

    def _llm_act(self, run: SkillRun, task: str, traj: Trajectory) -> tuple[str, int, int]:
        if answers := run.answers_here():
            return self._llm_answer(run, task, answers)
        recent = traj.steps[-5:]
        history = "\n".join(f"> {s.action}\n{s.observation[:300]}" for s in recent)
        step = run.current
        current = fill(step_text(step), run.binding) if step else "finish the task"
        # what the LLM already did here and did not move on is not offered again (one
        # failing action repeated to the end of the budget); going places is
        done = {s.action for s in traj.steps if s.actor == "llm"}
        nav = run.semantics.is_navigation
        choices = [a for a in run.free_choices() if a not in done or nav(a)] or ["look"]
        if len(choices) > _LLM_CHOICES:
            # Some environments admit thousands of actions: the model sees, and may pick
            # from, those closest to the current step (stable order among equals).
            step_words = normalize(current)
            ranked = sorted(choices, key=lambda a: -similarity(normalize(a), step_words))
            choices = ranked[:_LLM_CHOICES]
        msgs: list[Message] = [
            {
                "role": "system",
                "content": "You act in a text environment. Answer with one action from the list.",
            },
            {
                "role": "user",
                "content": (
                    f"Task: {task}\nPlan:\n{describe(run.program, run.binding)}\n"
                    f"Current step: {current}\nRecent:\n{history}\n"
                    "Actions:\n" + "\n".join(choices) + "\nNext action:"
                ),
            },
        ]
        used = {"prompt": 0, "completion": 0}
        text = self._ask(msgs, used, max_tokens=32, choices=choices)
        action = text if text in choices else choices[0]
        return action, used["prompt"], used["completion"]

    def _closest_group(self, task: str, answers: list[str], run: SkillRun) -> list[str]:
        """The answers whose things stand out as closest to the task: those before the
        largest drop in similarity, where it is a clear one (else all of them)."""
        if self.embedder is None or len(answers) < 3:
            return answers
        # the sentence of the task that asks for the answer ("Focus on the animal with
        # the longest life span."), where one uses the step's verb: the rest of the task
        # (where the animals are) blurs the comparison
        kind = verb(str(run.current.action)) if run.current else ""
        asks = [x for x in re.split(r"(?<=[.!?])\s+", task) if kind and kind in x.lower()]
        things = [run.semantics.location(a) or a for a in answers]
        vecs = self.embedder.embed([asks[-1] if asks else task, *things])
        sims = [float(x) for x in vecs[1:] @ vecs[0]]
        order = sorted(range(len(answers)), key=lambda i: -sims[i])
        drops = [sims[order[k - 1]] - sims[order[k]] for k in range(1, len(order))]
        cut = max(range(len(drops)), key=lambda k: drops[k]) + 1
        if drops[cut - 1] < _CLEAR_DROP:
            return answers
        return [answers[i] for i in sorted(order[:cut])]

    def _llm_answer(self, run: SkillRun, task: str, answers: list[str]) -> tuple[str, int, int]:
        """The step gives the task's answer and what it was learned on is not here: a
        question on the task alone (which animal lives longest), among the things here
        closest to the task (the embedder tells the animals from the axe and the air;
        the model then knows which lives longest)."""
        answers = self._closest_group(task, answers, run)
        if len(answers) == 1:
            return answers[0], 0, 0
        things = [run.semantics.location(a) or a for a in answers]
        msgs: list[Message] = [
            {
                "role": "system",
                "content": "Answer the question with one action from the list. Use what you "
                "know about the world.",
            },
            {
                "role": "user",
                "content": (
                    f"Task: {task}\nHere you see: {', '.join(things)}.\nThe things differ "
                    "from the episodes this was learned on. Which action answers the task "
                    "here?\nActions:\n" + "\n".join(answers) + "\nAnswer:"
                ),
            },
        ]
        used = {"prompt": 0, "completion": 0}
        text = self._ask(msgs, used, max_tokens=32, choices=answers)
        action = text if text in answers else answers[0]
        return action, used["prompt"], used["completion"]
