"""Build strategies: turn a trajectory into a procedure.

- ``trajectory``: keep the step-level trajectory verbatim.
- ``script``: ask the LLM to abstract it into a short, general procedure.
- ``proceduralization``: both (the paper's best setting).
- ``executable``: distill the trajectory (replay-verified when an env is given) and
  compile it into a :class:`~memp.types.Program` that plays the task with no LLM
  (:func:`build_executable`; needs the environment's action semantics).

Which trajectories become procedures is one rule, :func:`builds`, that every way in
(``Memory.add`` / ``build``, the HTTP API, MCP, the CLI, the update strategies) follows.

Prompts are files under ``memp/prompts/<family>/`` chosen by the environment's family,
each with one worked example of that family.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from memp.errors import InvalidInput, MissingData, check_choice
from memp.llm.base import LLM, Message
from memp.tokens import STOPWORDS
from memp.types import Procedure, Trajectory

if TYPE_CHECKING:
    from memp.envs.base import ActionSemantics, Env

BUILD_STRATEGIES = ("trajectory", "script", "proceduralization", "executable")
FAMILIES = ("household", "science", "cooking", "travel", "generic")
_FAMILY_OF = {
    "alfworld": "household",
    "household": "household",
    "scienceworld": "science",
    "science": "science",
    "textworld": "cooking",
    "twx": "cooking",
    "textworldexpress": "cooking",
    "cooking": "cooking",
    "travelplanner": "travel",
    "travel": "travel",
}
_SYSTEM = "You are a careful assistant. Answer in the format of the example, with nothing else."
MAX_PROMPT_STEPS = 40


def family_for(environment: str) -> str:
    """The prompt family of an environment name ("alfworld" -> "household"...)."""
    env = environment.lower()
    return _FAMILY_OF.get(env) or _FAMILY_OF.get(env.split(":")[0].split("-")[0], "generic")


@cache
def load_prompt(family: str, name: str) -> Template:
    check_choice("prompt family", family, FAMILIES)
    check_choice("prompt", name, ("script", "facts", "adjust"))
    text = resources.files("memp").joinpath("prompts", family, f"{name}.txt").read_text("utf-8")
    return Template(text)


def format_steps(trajectory: Trajectory, *, observations: bool = False) -> str:
    steps = trajectory.steps
    if len(steps) > MAX_PROMPT_STEPS:  # keep the start and the end; the middle is search noise
        half = MAX_PROMPT_STEPS // 2
        steps = [*steps[:half], *steps[-half:]]
    lines = []
    for s in steps:
        lines.append(f"> {s.action}")
        if observations and s.observation:
            lines.append(s.observation.strip().splitlines()[0][:160])
    return "\n".join(lines) or "(no actions)"


_NUMBERED = re.compile(r"^\s*(?:step\s*)?(\d+)\s*[.):-]\s*(.+?)\s*$", re.IGNORECASE)


def parse_steps(text: str, *, max_steps: int = 12) -> list[str]:
    """The numbered steps of an LLM answer (stops at the first block after them)."""
    steps: list[str] = []
    for line in text.splitlines():
        m = _NUMBERED.match(line)
        if m:
            steps.append(m.group(2))
        elif steps and line.strip() and not line.startswith((" ", "\t")):
            break  # the model went on to something else (a new "Task:" etc.)
    return steps[:max_steps]


def number(steps: list[str]) -> str:
    return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))


def _ask(llm: LLM, prompt: str, max_tokens: int) -> str:
    messages: list[Message] = [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": prompt},
    ]
    return llm.complete(messages, max_tokens=max_tokens, temperature=0.0, stop=["\nTask:"]).text


def mechanical_script(trajectory: Trajectory, *, max_steps: int = 12) -> str:
    """A script from the actions themselves (fallback when the LLM gives no steps)."""
    seen: list[str] = []
    for a in trajectory.actions:
        if a not in seen[-1:]:
            seen.append(a)
    return number([f"Do: {a}" for a in seen[:max_steps]])


def abstract_script(llm: LLM, trajectory: Trajectory) -> tuple[str, bool]:
    """Ask the LLM for a general procedure; returns (script, fell_back)."""
    family = family_for(trajectory.environment)
    prompt = load_prompt(family, "script").safe_substitute(
        task=trajectory.task, trajectory=format_steps(trajectory)
    )
    steps = parse_steps(_ask(llm, prompt, 256))
    if not steps:
        return mechanical_script(trajectory), True
    return number(steps), False


def adjust_script(llm: LLM, procedure: Procedure, failed: Trajectory) -> str | None:
    """Rewrite ``procedure``'s script from a failed trajectory; None if the LLM gave no steps."""
    family = family_for(procedure.environment)
    old = procedure.script or (
        mechanical_script(procedure.trajectory) if procedure.trajectory else "(none)"
    )
    last = failed.steps[-1].observation.strip() if failed.steps else ""
    outcome = "failed" + (f"; last observation: {last[:200]}" if last else "")
    prompt = load_prompt(family, "adjust").safe_substitute(
        task=failed.task,
        script=old,
        outcome=outcome,
        trajectory=format_steps(failed, observations=True),
    )
    steps = parse_steps(_ask(llm, prompt, 256))
    return number(steps) if steps else None


_WORD = re.compile(r"[a-z][a-z0-9'-]*|[0-9]+")


def keywords(text: str, *, limit: int = 6) -> list[str]:
    """Content words of a task, in order (the LLM-free fact extractor)."""
    out: list[str] = []
    for w in _WORD.findall(text.lower()):
        if w not in STOPWORDS and len(w) > 1 and w not in out:
            out.append(w)
    return out[:limit]


def extract_facts(task: str, environment: str, llm: LLM | None, *, limit: int = 6) -> list[str]:
    """Key facts/keywords of a task: by the LLM if given, else content words."""
    if llm is None:
        return keywords(task, limit=limit)
    prompt = load_prompt(family_for(environment), "facts").safe_substitute(task=task)
    out: list[str] = []
    for line in _ask(llm, prompt, 64).splitlines():
        fact = line.strip().lstrip("-*•0123456789.) ").strip().rstrip(".").lower()
        if not fact:
            if out:
                break
            continue
        if fact.startswith(("task:", "facts:")):
            break
        if fact not in out:
            out.append(fact[:80])
    return out[:limit] or keywords(task, limit=limit)


def task_key_of(trajectory: Trajectory, explicit: str | None = None) -> str | None:
    """The abstracted task template: given, from metadata["task_key"], or made by
    replacing metadata["entities"] ({slot: value}) in the task with {slot}."""
    if explicit:
        return explicit
    md = trajectory.metadata
    if isinstance(md.get("task_key"), str) and md["task_key"]:
        return md["task_key"]
    entities = md.get("entities")
    if isinstance(entities, dict) and entities:
        key = trajectory.task
        # Longest values first so "apple slice" is replaced before "apple".
        for slot, value in sorted(entities.items(), key=lambda kv: -len(str(kv[1]))):
            if value:
                key = re.sub(re.escape(str(value)), "{" + str(slot) + "}", key, flags=re.I)
        return key
    return None


def builds(trajectory: Trajectory, *, keep_failed: bool = False) -> bool:
    """The build rule: a trajectory becomes a procedure unless it failed.

    Retrieved procedures are shown as what worked on similar tasks, so a failed
    trajectory (``success is False``) is not built by default: that is the paper's
    ``validation``. With ``keep_failed=True`` (the paper's ``vanilla``, which keeps
    everything) it is built, marked ``metadata["source_success"] = False``, and
    rendered as a failed attempt to avoid, never among the ones that worked. A
    trajectory with no recorded outcome (``success is None``) counts as a demonstration.
    """
    return keep_failed or trajectory.success is not False


def not_built_reason(trajectory: Trajectory) -> str:
    return (
        f"not built: the trajectory failed (trajectory {trajectory.id}, success=false); "
        "procedures are built only from trajectories that did not fail, pass "
        "keep_failed=True to keep it as a failed attempt to avoid"
    )


def is_failure(procedure: Procedure) -> bool:
    """Whether a procedure was kept from a failed trajectory (see :func:`builds`)."""
    return procedure.metadata.get("source_success") is False


NEEDS_SEMANTICS = (
    "build strategy 'executable' compiles the trajectory with the environment's action "
    "semantics: pass env=<a memp.envs environment> (its episodes replay-verify the "
    "distilled trajectory) or semantics=<its ActionSemantics>, e.g. "
    "Memory.add(trajectory, strategy='executable', env=make_env('alfworld'))"
)


class _Collect:
    """Stands in for a memory: keeps what :func:`build_skill_memory` would store."""

    def __init__(self) -> None:
        self.procedures: list[Procedure] = []

    def add_procedure(self, procedure: Procedure) -> Procedure:
        self.procedures.append(procedure)
        return procedure


def build_executable(
    trajectory: Trajectory,
    *,
    semantics: ActionSemantics | None = None,
    env: Env | None = None,
    task_key: str | None = None,
    keep_failed: bool = False,
) -> Procedure:
    """Build (do not store) an executable procedure, as the experiment runner does
    (:func:`memp.skills.compile.build_skill_memory`): the distilled trajectory, its
    task template as ``task_key`` and the compiled program with its search priors.

    A failed trajectory is refused (see :func:`builds`); with ``keep_failed`` too,
    since a program is compiled only from an episode that did not fail.
    """
    from memp.skills.compile import build_skill_memory

    if semantics is None:
        semantics = getattr(env, "semantics", None)
    if semantics is None:
        raise InvalidInput(NEEDS_SEMANTICS)
    if task_key is not None:
        raise InvalidInput(
            "build strategy 'executable' finds the task template from the entities the "
            "trajectory touched; leave task_key unset"
        )
    if not builds(trajectory, keep_failed=keep_failed):
        raise InvalidInput(not_built_reason(trajectory))
    if trajectory.success is False:
        raise InvalidInput(
            f"not built: the trajectory failed (trajectory {trajectory.id}); an executable "
            "program is compiled only from an episode that did not fail, keep_failed keeps "
            "failed attempts with the strategies trajectory, script and proceduralization"
        )
    # no recorded outcome counts as a demonstration (see builds)
    source = trajectory if trajectory.success else trajectory.model_copy(update={"success": True})
    sink = _Collect()
    build_skill_memory(sink, [source], semantics, env=env)
    (p,) = sink.procedures
    metadata = {"family": family_for(trajectory.environment), **p.metadata}
    if trajectory.success is not None:
        metadata["source_success"] = trajectory.success
    return p.model_copy(update={"build": "executable", "metadata": metadata})


def build_procedure(
    trajectory: Trajectory,
    *,
    strategy: str = "proceduralization",
    llm: LLM | Callable[[], LLM] | None = None,
    facts_llm: LLM | None = None,
    namespace: str = "default",
    task_key: str | None = None,
    keep_failed: bool = False,
    env: Env | None = None,
    semantics: ActionSemantics | None = None,
) -> Procedure:
    """Build (do not store) a procedure from ``trajectory``. ``llm`` may be a factory,
    called only if the strategy needs a model. A failed trajectory is refused unless
    ``keep_failed`` (see :func:`builds`). ``env`` / ``semantics``: for strategy
    ``executable`` (:func:`build_executable`)."""
    check_choice("build strategy", strategy, BUILD_STRATEGIES)
    if strategy == "executable":
        p = build_executable(
            trajectory, semantics=semantics, env=env, task_key=task_key, keep_failed=keep_failed
        )
        facts = extract_facts(trajectory.task, trajectory.environment, facts_llm)
        return p.model_copy(update={"namespace": namespace, "facts": facts})
    if not builds(trajectory, keep_failed=keep_failed):
        raise InvalidInput(not_built_reason(trajectory))
    script, fell_back = None, False
    if strategy in ("script", "proceduralization"):
        model = llm() if callable(llm) and not hasattr(llm, "complete") else llm
        if model is None:
            raise InvalidInput(
                f"build strategy {strategy!r} needs an LLM to abstract the trajectory; pass "
                "llm=... to Memory or use strategy='trajectory'"
            )
        script, fell_back = abstract_script(model, trajectory)  # type: ignore[arg-type]
    metadata: dict[str, Any] = {"family": family_for(trajectory.environment)}
    if fell_back:
        metadata["script_fallback"] = True
    if trajectory.success is not None:
        metadata["source_success"] = trajectory.success
    return Procedure(
        namespace=namespace,
        task=trajectory.task,
        task_key=task_key_of(trajectory, task_key),
        environment=trajectory.environment,
        build=strategy,
        script=script,
        trajectory=trajectory if strategy in ("trajectory", "proceduralization") else None,
        facts=extract_facts(trajectory.task, trajectory.environment, facts_llm),
        source_trajectory_id=trajectory.id,
        source_model=trajectory.model,
        metadata=metadata,
    )


# -- reading trajectory files ---------------------------------------------------


def _explain(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:3]:
        where = ".".join(str(x) for x in err["loc"]) or "(record)"
        parts.append(f"field {where!r}: {err['msg']}")
    return "; ".join(parts)


def read_trajectories(path: str | Path) -> Iterator[Trajectory]:
    """Trajectories from a JSON file (one object or a list) or a JSONL file (one per line).

    Errors name the line (JSONL) or record index (JSON list) and the field.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingData(f"trajectory file {p} does not exist")
    text = p.read_text("utf-8")
    stripped = text.lstrip()
    records: list[tuple[str, Any]] = []
    whole: Any = None
    if stripped.startswith("["):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidInput(
                f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
            ) from e
        records = [(f"{p} record {i}", r) for i, r in enumerate(whole, 1)]
    else:
        try:
            if p.suffix == ".jsonl":
                raise json.JSONDecodeError("JSON lines", text, 0)
            records = [(f"{p}", json.loads(text))]
        except json.JSONDecodeError:
            records = []
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    records.append((f"{p} line {n}", json.loads(line)))
                except json.JSONDecodeError as e:
                    raise InvalidInput(
                        f"{p} line {n}: not valid JSON ({e.msg} at column {e.colno})"
                    ) from e
    for where, rec in records:
        if not isinstance(rec, dict):
            raise InvalidInput(
                f"{where}: expected a JSON object (a trajectory), got {type(rec).__name__}"
            )
        try:
            yield Trajectory.model_validate(rec)
        except ValidationError as e:
            raise InvalidInput(f"{where}: invalid trajectory: {_explain(e)}") from e
