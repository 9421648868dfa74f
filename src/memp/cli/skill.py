"""`memp skill ...`: executable procedures as runnable skills, through :meth:`memp.Memory.skill`.

``show`` prints the program and binding a task would get (no environment is started:
the action semantics come by name from :mod:`memp.skills.semantics_registry`); ``run``
opens the environment, plays one episode with the skill (no LLM) and counts the outcome
on the procedures it came from.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

import typer

from memp.cli.common import DB_OPT, EMB_OPT, JSON_OPT, NS_OPT, open_memory, print_json

app = typer.Typer(help="Show and run executable procedures as skills.", no_args_is_help=True)

_ENV_OPT = typer.Option(..., "--env", help="The environment's name (alfworld, textworld, ...).")


def _describe(skill: Any) -> dict[str, Any]:
    return {
        "task": skill.task,
        "procedure_id": skill.procedure_id,
        "procedure_ids": skill.procedure_ids,
        "binding": skill.binding,
        "program": skill.program.model_dump(mode="json"),
        "notes": skill.notes,
    }


def _print_program(skill: Any) -> None:
    program = skill.program
    binding = ", ".join(f"{k}={v!r}" for k, v in skill.binding.items()) or "(no slots)"
    typer.echo(f"task: {skill.task}\ntemplate: {program.key}\nbinding: {binding}")
    typer.echo(f"procedure: {skill.procedure_id} (of {len(skill.procedure_ids)} with this key)")
    for n, step in enumerate(program.steps, 1):
        what = f"find {step.what}" if step.op == "find" else f"{step.op} {step.action}"
        if step.op == "read":
            what += f"  -> {{{step.slot}}}"
        typer.echo(f"{n:3}. {what}" + (f"  (at {step.at})" if step.at else ""))


@app.command("show")
def skill_show(
    task: str = typer.Argument(..., help="The task to get a skill for."),
    environment: str = _ENV_OPT,
    as_json: bool = JSON_OPT,
    db: str = DB_OPT,
    namespace: str = NS_OPT,
    embedder: str = EMB_OPT,
) -> None:
    """The compiled program and slot binding a task gets (counts nothing)."""
    from memp.skills.handle import no_skill
    from memp.skills.semantics_registry import semantics_for

    semantics = semantics_for(environment)
    with open_memory(db, namespace, embedder) as mem:
        skill = mem.skill(task, environment=environment, semantics=semantics, track=False)
    if skill is None:
        raise no_skill(task, environment, namespace)
    if as_json:
        print_json(_describe(skill))
    else:
        _print_program(skill)


def _episode_of(env: Any, task: str) -> int:
    """The first episode of ``env`` whose task is ``task``."""
    from memp.errors import InvalidInput
    from memp.template import normalize

    for i in range(len(env)):
        if normalize(env.reset(episode=i)[1]["task"]) == normalize(task):
            return i
    raise InvalidInput(
        f"no episode of {env.name} ({env.split or 'this split'}, {len(env)} episodes) is the "
        f"task {task!r}: pass --episode N (and --split / --opt as the environment needs)"
    )


@app.command("run")
def skill_run(
    task: str = typer.Argument(
        None, help="The task (default: the task of --episode); its episode is looked up."
    ),
    environment: str = _ENV_OPT,
    split: str = typer.Option("valid_unseen", "--split", help="The environment split."),
    episode: int = typer.Option(None, "--episode", help="The episode to play."),
    opts: list[str] = typer.Option(
        None, "--opt", help="Environment option key=value (e.g. data_dir=..., game=...)."
    ),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="The skill's step budget."),
    as_json: bool = JSON_OPT,
    db: str = DB_OPT,
    namespace: str = NS_OPT,
    embedder: str = EMB_OPT,
) -> None:
    """Play one episode with the skill for its task (no LLM) and count the outcome."""
    from memp.agents.base import parse_env_options
    from memp.envs import make_env
    from memp.errors import InvalidInput
    from memp.skills.handle import no_skill
    from memp.skills.runtime import ExecConfig

    if task is None and episode is None:
        raise InvalidInput("give the TASK to run, or --episode N to run that episode's task")
    config = None if max_steps is None else ExecConfig.no_llm(max_steps=max_steps)
    env = make_env(environment, split=split, **parse_env_options(opts))
    with closing(env), open_memory(db, namespace, embedder) as mem:
        if episode is None:
            episode = _episode_of(env, task)
        elif task is None:
            task = env.reset(episode=episode)[1]["task"]
        skill = mem.skill(task, env=env, config=config)
        if skill is None:
            raise no_skill(task, env.name, namespace)
        traj = skill.run(env, episode)
    if as_json:
        print_json({**_describe(skill), "trajectory": traj.model_dump(mode="json")})
        return
    typer.echo(f"{env.name} {split} episode {episode}: {task}")
    typer.echo(f"template: {skill.program.key}   binding: {skill.binding}")
    for n, step in enumerate(traj.steps, 1):
        seen = (step.observation or "").strip().splitlines()
        typer.echo(f"{n:3}. {step.action}\n     -> {seen[0][:160] if seen else ''}")
    verdict = "won" if traj.success else f"not won ({traj.metadata.get('stop') or 'episode over'})"
    typer.echo(
        f"{verdict} in {len(traj.steps)} step(s); outcome counted on "
        f"{len(skill.procedure_ids)} procedure(s) ({skill.procedure_id} ...)"
    )
