"""Experiment configuration: TOML files and CLI overrides, validated by pydantic.

An experiment is: environments (memory is built on a training split and evaluated on a
held-out split), model(s), and conditions. A condition is one way of running the agent:
(memory build strategy or none, retrieval strategy, k, prompt|executable mode, update
strategy). Unknown keys are errors that name the key and the valid ones, so a typo never
silently changes what an experiment measures.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memp.errors import InvalidInput

BUILD_STRATEGIES = ("trajectory", "script", "proceduralization")
RETRIEVE_STRATEGIES = ("random", "query", "avefact", "hybrid")
UPDATE_STRATEGIES = ("vanilla", "validation", "adjustment", "erasure", "merge")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvConfig(_Config):
    """One environment: where memory comes from (train) and what is evaluated (eval)."""

    name: str
    train_split: str = "train"
    eval_split: str = "test"
    # An int means "the first N episodes"; a list names episode indices.
    train_episodes: int | list[int] = 20
    eval_episodes: int | list[int] = 12
    options: dict[str, Any] = Field(default_factory=dict)
    # Extra options for one side only, e.g. train_options = { task_types = "..." } to
    # hold out task types that memory has no procedure for.
    train_options: dict[str, Any] = Field(default_factory=dict)
    eval_options: dict[str, Any] = Field(default_factory=dict)
    # Label used in reports and the run database; defaults to the name.
    label: str | None = None
    # Per-environment step budget (overrides agent.max_steps; tasks differ in length).
    max_steps: int | None = Field(None, ge=1)
    # k-fold cross-validation over one split (train_split == eval_split): eval episode
    # number i (in eval_episodes order) is in fold i % folds, and is played with a memory
    # that holds no procedure built from its fold's episodes.
    folds: int | None = Field(None, ge=2)

    @model_validator(mode="after")
    def _folds_ok(self) -> EnvConfig:
        if self.folds is not None:
            if self.train_split != self.eval_split:
                raise ValueError(
                    f"env {self.key!r}: folds cross-validate one split; set train_split = "
                    f"eval_split (got {self.train_split!r} and {self.eval_split!r})"
                )
            if not set(self.eval_indices()) <= set(self.train_indices()):
                raise ValueError(
                    f"env {self.key!r}: with folds every eval episode must be a training episode"
                )
            if len(self.eval_indices()) < self.folds:
                raise ValueError(f"env {self.key!r}: fewer eval episodes than folds")
        return self

    def fold_of(self) -> dict[int, int]:
        """Eval episode -> its fold (empty without folds)."""
        if self.folds is None:
            return {}
        return {e: i % self.folds for i, e in enumerate(self.eval_indices())}

    @property
    def key(self) -> str:
        return self.label or self.name

    def agent_config(self, agent: AgentConfig) -> AgentConfig:
        if self.max_steps is None:
            return agent
        return agent.model_copy(update={"max_steps": self.max_steps})

    def options_for(self, split: str) -> dict[str, Any]:
        side = self.train_options if split == self.train_split else {}
        if split == self.eval_split:
            side = {**side, **self.eval_options}
        return {**self.options, **side}

    def train_indices(self) -> list[int]:
        return _indices(self.train_episodes)

    def eval_indices(self) -> list[int]:
        return _indices(self.eval_episodes)

    def episode_seed(self, base: int, role: Literal["train", "eval"], episode: int) -> int:
        """The seed an episode is played with, recorded with it.

        Derived from what the episode is (environment, split, index), never from the
        block's label: two blocks that differ only in label or training size play the
        same episodes, so they can share them (and other runs can reuse them).
        """
        split = self.train_split if role == "train" else self.eval_split
        blob = "|".join(map(str, (base, self.name, split, episode))).encode()
        return int(hashlib.sha256(blob).hexdigest()[:8], 16)


def _indices(spec: int | list[int]) -> list[int]:
    if isinstance(spec, int):
        if spec < 0:
            raise InvalidInput(f"episode count must be >= 0, got {spec}")
        return list(range(spec))
    return list(spec)


class AgentConfig(_Config):
    """Options passed to every policy (ReActAgent / SkillAgent)."""

    max_steps: int = Field(30, ge=1)
    use_choices: bool = True
    # Extra keyword options for the agent constructors, passed through unchanged.
    react: dict[str, Any] = Field(default_factory=dict)
    skill: dict[str, Any] = Field(default_factory=dict)


class ConditionConfig(_Config):
    """One arm of the experiment."""

    name: str
    # Build strategy of the memory, or "none" for the no-memory baseline.
    memory: Literal["none", "trajectory", "script", "proceduralization"] = "none"
    retrieve: Literal["random", "query", "avefact", "hybrid"] = "query"
    k: int = Field(3, ge=1)
    min_score: float = 0.0
    budget_tokens: int | None = None
    # prompt: retrieved procedures are pasted into the prompt (the paper's way);
    # executable: they run as skills (memp.execute.SkillAgent).
    mode: Literal["prompt", "executable"] = "prompt"
    # Executable mode only: let the LLM take over where the skill does not reach.
    # false is the no-LLM ablation.
    use_llm: bool = True
    # Executable mode only: ExecConfig switches for this arm (over [agent.skill]), so
    # each mechanism can be ablated as its own condition, e.g. { priors = false }.
    skill: dict[str, Any] = Field(default_factory=dict)
    # Update strategy applied after each group of eval episodes ("none": memory frozen).
    update: Literal["none", "vanilla", "validation", "adjustment", "erasure", "merge"] = "none"
    update_options: dict[str, Any] = Field(default_factory=dict)
    # Memory starts from the training split ("train") or empty ("empty", grows by updates).
    start: Literal["train", "empty"] = "train"
    # The [[env]] blocks (labels) this arm plays; empty: every block. A study can run its
    # costly prompt arms on a stratified subset and its executable arms on every game.
    envs: list[str] = Field(default_factory=list)
    # The [[env]] block (label) whose training episodes build this arm's memory; empty:
    # the block it plays. Memory built on one game source, used on another (transfer).
    memory_from: str | None = None
    # Whose trajectories memory is built from: "expert" or an LLM spec (transfer).
    source: str = "expert"
    # Which LLM writes scripts; defaults to the source model (or the evaluated model
    # when the source is the expert).
    builder: str | None = None
    # Evaluated model; defaults to each of the experiment's models.
    model: str | None = None

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\\n"):
            raise ValueError("condition names must be non-empty and contain no slashes")
        return v

    def plays_in(self, env_key: str) -> bool:
        return not self.envs or env_key in self.envs

    def memory_env(self, env: EnvConfig, blocks: Sequence[EnvConfig]) -> EnvConfig:
        """The block whose training episodes build this arm's memory when it plays ``env``."""
        if self.memory_from is None:
            return env
        return next(e for e in blocks if e.key == self.memory_from)

    @model_validator(mode="after")
    def _consistent(self) -> ConditionConfig:
        if self.memory == "none" and self.update != "none" and self.start != "empty":
            raise ValueError(
                f"condition {self.name!r}: memory='none' with update={self.update!r} needs "
                "start='empty' (memory grows from the agent's own episodes)"
            )
        if self.skill:
            import dataclasses

            from memp.execute import ExecConfig

            valid = {f.name for f in dataclasses.fields(ExecConfig)}
            unknown = sorted(set(self.skill) - valid)
            if unknown:
                raise ValueError(
                    f"condition {self.name!r}: unknown skill option(s) {', '.join(unknown)}; "
                    f"valid: {', '.join(sorted(valid))}"
                )
        if self.mode == "executable" and self.memory == "script":
            raise ValueError(
                f"condition {self.name!r}: executable procedures are compiled from trajectories; "
                "use memory='trajectory' or 'proceduralization' with mode='executable'"
            )
        return self

    @property
    def memory_kind(self) -> str:
        """What is built: the build strategy, or "skills" (compiled programs) in executable mode."""
        return "skills" if self.mode == "executable" and self.memory != "none" else self.memory

    @property
    def uses_memory(self) -> bool:
        return self.memory != "none" or self.update != "none"


class TargetConfig(_Config):
    """What the best memory condition must reach against no memory, per environment.

    Judged in the report (met or missed, and by which condition); it does not change what
    is measured, so it is left out of the fingerprint and can be added to a finished run.
    """

    success_points: float = Field(0.0, ge=-100, le=100)  # points of success rate over no memory
    steps_cut: float = Field(0.0, ge=-100, le=100)  # percent fewer steps (fail = budget)
    # Absolute goals, judged on the condition's own numbers (no baseline needed).
    success: float | None = Field(None, ge=0, le=100)  # at least this success rate (percent)
    mean_steps: float | None = Field(None, gt=0)  # at most this many steps (fail = budget)
    # At least this much of the benchmark's own metrics (a ScienceWorld score: its mean;
    # a rate such as TravelPlanner's final pass: in percent).
    metrics: dict[str, float] = Field(default_factory=dict)
    # Which conditions are judged (default: every condition with memory).
    conditions: list[str] = Field(default_factory=list)
    # The condition relative goals are measured against (default: the one without
    # memory), e.g. retrieval by similarity against retrieval at random.
    baseline: str | None = None
    # Success within this many points of the baseline, either side (transfer: a weaker
    # model with the same memory as a stronger one).
    within_points: float | None = Field(None, ge=0, le=100)

    @property
    def relative(self) -> bool:
        return bool(self.success_points or self.steps_cut or self.within_points is not None)


class PublishedResult(_Config):
    """A published number shown beside the run's own, labelled with its source and model.

    Reference only: never measured here and never part of a verdict.
    """

    source: str  # e.g. "Memp (arXiv 2508.06433), Table 1"
    model: str
    condition: str
    split: str = ""
    metrics: dict[str, float]  # e.g. { success = 39.28, steps = 23.76 }


class ExperimentConfig(_Config):
    name: str
    description: str = ""
    seed: int = 0
    models: list[str] = Field(default_factory=lambda: ["local"])
    embedder: str = "local"
    # Eval episodes are split into this many successive groups; update strategies learn
    # between groups (the learning curve).
    groups: int = Field(1, ge=1)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    # Shorten training trajectories (drop detours, no-op and open/close pairs; kept only
    # if the shortened one still wins on replay) before memory is built from them.
    distill: bool = True
    env: list[EnvConfig]
    condition_defaults: dict[str, Any] = Field(default_factory=dict)
    conditions: list[ConditionConfig]
    target: TargetConfig | None = None
    published: list[PublishedResult] = Field(default_factory=list)
    # The full experiment's conditions when a run plays only some (memp run --conditions):
    # its report says which are missing. Not part of what is measured.
    subset_of: list[str] = Field(default_factory=list)
    # Execution settings: not part of what is measured (excluded from the fingerprint).
    executor: Literal["local", "ray", "inline"] = "local"
    workers: int | None = None
    address: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        # A single [env] table is accepted as well as [[env]] arrays.
        if isinstance(data.get("env"), dict):
            data["env"] = [data["env"]]
        defaults = data.get("condition_defaults") or {}
        if defaults and isinstance(data.get("conditions"), list):
            data["conditions"] = [
                {**defaults, **c} if isinstance(c, dict) else c for c in data["conditions"]
            ]
        if isinstance(data.get("models"), str):
            data["models"] = [data["models"]]
        return data

    @model_validator(mode="after")
    def _unique(self) -> ExperimentConfig:
        if not self.env:
            raise ValueError("at least one [[env]] is needed")
        if not self.conditions:
            raise ValueError("at least one [[conditions]] entry is needed")
        for kind, names in (
            ("condition", [c.name for c in self.conditions]),
            ("env label", [e.key for e in self.env]),
        ):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"duplicate {kind} names: {', '.join(sorted(dup))}")
        if not self.models:
            raise ValueError("models must name at least one LLM spec")
        names = [c.name for c in self.conditions]
        t = self.target
        for who in ([t.baseline] if t and t.baseline else []) + (t.conditions if t else []):
            if who not in names:
                raise ValueError(
                    f"[target] names condition {who!r}, which is not one of the conditions: "
                    f"{', '.join(map(repr, names))}"
                )
        keys = [e.key for e in self.env]

        def no_block(c: ConditionConfig, subject: str) -> ValueError:
            return ValueError(
                f"condition {c.name!r}: {subject} no [[env]] block; valid labels: "
                f"{', '.join(map(repr, keys))}"
            )

        for c in self.conditions:
            if c.memory_from is not None:
                if c.memory_from not in keys:
                    raise no_block(c, f"memory_from {c.memory_from!r} names")
                if c.memory == "none" or c.update != "none":
                    raise ValueError(
                        f"condition {c.name!r}: memory_from needs a memory kept as built "
                        "(memory != 'none', update = 'none')"
                    )
                if any(e.folds and c.plays_in(e.key) for e in self.env):
                    raise ValueError(
                        f"condition {c.name!r}: memory_from and folds do not mix (a fold's "
                        "memory leaves out that fold's own training episodes)"
                    )
            unknown = [x for x in c.envs if x not in keys]
            if unknown:
                raise no_block(c, f"envs {', '.join(map(repr, unknown))} name")
        folded = [e.key for e in self.env if e.folds]
        updating = [c.name for c in self.conditions if c.update != "none" or c.start != "train"]
        if folded and updating:
            raise ValueError(
                f"env {folded[0]!r} uses folds, which hold memory fixed per fold; conditions "
                f"{', '.join(updating)} update memory or start empty: run them without folds"
            )
        return self

    def fingerprint(self) -> str:
        """Hash of everything that changes what is measured (not how it is executed)."""
        data = self.model_dump(
            mode="json",
            exclude={"executor", "workers", "address", "target", "published", "subset_of"},
        )
        for env in data["env"]:
            if env.get("folds") is None:  # runs from before folds existed keep their fingerprint
                env.pop("folds", None)
        for cond in data["conditions"]:
            if not cond.get("envs"):  # and those from before per-arm env blocks
                cond.pop("envs", None)
            if cond.get("memory_from") is None:
                cond.pop("memory_from", None)
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def arms(self) -> list[Arm]:
        """Conditions crossed with models (a condition that names its model runs once)."""
        out: list[Arm] = []
        multi = len(self.models) > 1
        for cond in self.conditions:
            models = [cond.model] if cond.model else self.models
            for m in models:
                label = f"{cond.name}@{m}" if multi and not cond.model else cond.name
                out.append(Arm(label=label, condition=cond, model=m))
        return out


class Arm(BaseModel):
    """A condition bound to the model that is evaluated with it."""

    label: str
    condition: ConditionConfig
    model: str

    @property
    def builder_llm(self) -> str:
        """The LLM that writes scripts and adjusts procedures for this arm."""
        c = self.condition
        if c.builder:
            return c.builder
        return self.model if c.source == "expert" else c.source

    @property
    def builder(self) -> str:
        """The builder as part of the memory's identity ("-" when building needs no LLM)."""
        if self.condition.memory_kind in ("trajectory", "skills"):
            return "-"
        return self.builder_llm


def _format_errors(err: ValidationError, origin: str) -> str:
    lines = [f"invalid experiment config ({origin}):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  - unknown key {loc!r}: remove it or check its spelling")
        else:
            lines.append(f"  - {loc}: {e['msg']}")
    fields = ", ".join(ExperimentConfig.model_fields)
    cond = ", ".join(ConditionConfig.model_fields)
    lines.append(f"  top-level keys: {fields}")
    lines.append(f"  condition keys: {cond}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], origin: str = "<dict>") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise InvalidInput(_format_errors(err, origin)) from None


def load_raw(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"experiment file {str(p)!r} does not exist; see experiments/*.toml")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"{p} is not valid TOML: {e}") from None


def _parse_value(text: str) -> Any:
    # Values are TOML literals (numbers, booleans, quoted strings, arrays); a bare word
    # that is not valid TOML is taken as a string so `--set model=local` works.
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides to a raw config dict.

    ``env.<label>.<key>`` and ``conditions.<name>.<key>`` address list entries by name;
    ``conditions.*.<key>`` and ``env.*.<key>`` apply to every entry.
    """
    data = json.loads(json.dumps(data))  # deep copy of plain TOML data
    if isinstance(data.get("env"), dict):
        data["env"] = [data["env"]]
    for item in overrides:
        if "=" not in item:
            raise InvalidInput(f"override {item!r} must look like key=value (e.g. seed=3)")
        key, _, raw = item.partition("=")
        parts = key.strip().split(".")
        value = _parse_value(raw.strip())
        if parts[0] in ("env", "conditions") and len(parts) >= 3:
            entries = data.get(parts[0]) or []
            sel = parts[1]
            hit = [e for e in entries if sel in ("*", e.get("name"), e.get("label"))]
            if not hit:
                names = [e.get("label") or e.get("name") for e in entries]
                raise InvalidInput(
                    f"override {item!r}: no {parts[0]} entry named {sel!r}; have {names}"
                )
            for e in hit:
                _set(e, parts[2:], value)
        else:
            _set(data, parts, value)
    return data


def _set(d: dict[str, Any], parts: list[str], value: Any) -> None:
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise InvalidInput(f"cannot set {'.'.join(parts)}: {p!r} is not a table")
    d[parts[-1]] = value


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    data = load_raw(path)
    if overrides:
        data = apply_overrides(data, overrides)
    return parse_config(data, origin=str(path))
