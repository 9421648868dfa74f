"""`memp run --reuse`: identical finished units of another run are copied, not replayed.

Real runs on TextWorldExpress with the scripted test LLM and the hashing embedder (as in
test_experiment_runner.py); the reused units are checked against the source run's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memp.cli import app
from memp.errors import InvalidInput
from memp.experiment.config import parse_config
from memp.experiment.reuse import collect_identity, eval_identity, memory_identity
from memp.experiment.rundb import RunDB
from memp.experiment.runner import run_experiment

pytest.importorskip("textworld_express")

ENV = {"name": "twx", "train_split": "train", "eval_split": "test", "train_episodes": 3,
       "eval_episodes": 3, "options": {"game": "twc", "n": 12}}
NO_MEMORY = {"name": "no-memory"}
TRAJ = {"name": "trajectory", "memory": "trajectory", "k": 2}


def config(**over):
    data = {"name": "study-a", "models": ["scripted"], "embedder": "hash",
            "agent": {"max_steps": 30}, "env": ENV, "conditions": [NO_MEMORY, TRAJ]}
    data.update(over)
    return parse_config(data)


def run(cfg, out: Path, **kw):
    return run_experiment(cfg, out, executor="inline", progress=False, **kw)


@pytest.fixture(scope="module")
def run_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reuse") / "a"
    run(config(), out)
    return out


def _episodes(out: Path, phase: str = "eval") -> dict[tuple[str, int], dict]:
    with RunDB(out / "run.db") as db:
        return {
            (r.arm, r.episode): {"row": r, "traj": db.trajectory(r.id)}
            for r in db.episodes(phase=phase)
        }


def _same_play(a: dict, b: dict) -> bool:
    ta, tb = a["traj"], b["traj"]
    return (ta.success, len(ta.steps), ta.actions) == (tb.success, len(tb.steps), tb.actions)


def _ids(cfg, label: str = "trajectory") -> tuple[str, str, str]:
    """(collect, memory, eval) identities of episode 1 of an arm."""
    env, arm = cfg.env[0], {a.label: a for a in cfg.arms()}[label]
    return (collect_identity(cfg, env, "expert", 1),
            memory_identity(cfg, env, "expert", "trajectory", "-"),
            eval_identity(cfg, env, arm, 1, 0))


def test_identity_ignores_labels_not_settings() -> None:
    same = _ids(config())
    # Labels and execution settings: the same units.
    relabelled = config(name="other", description="x", executor="ray", workers=7,
                        conditions=[NO_MEMORY, {**TRAJ, "name": "traj-renamed"}])
    assert _ids(relabelled, "traj-renamed") == same
    # A setting a no-memory baseline never reads does not split it from another study's.
    assert _ids(config(condition_defaults={"k": 5}), "no-memory") == _ids(config(), "no-memory")

    def differ(cfg) -> tuple[bool, bool, bool]:
        return tuple(x != y for x, y in zip(_ids(cfg), same, strict=True))

    assert differ(config(conditions=[NO_MEMORY, {**TRAJ, "k": 3}])) == (False, False, True)
    assert differ(config(models=["scripted-b"])) == (False, False, True)
    assert differ(config(distill=False)) == (False, True, True)
    assert differ(config(embedder="hash-2")) == (False, True, True)
    # Episode 1 under memory built from more training episodes is another unit.
    assert differ(config(env={**ENV, "train_episodes": 4})) == (False, True, True)
    assert differ(config(seed=1)) == (True, True, True)
    assert differ(config(env={**ENV, "max_steps": 12})) == (True, True, True)
    assert differ(config(env={**ENV, "options": {"game": "twc", "n": 13}})) == (True, True, True)
    # The block's label is a name: the episodes (and their seeds) are the same.
    assert differ(config(env={**ENV, "label": "renamed"})) == (False, False, False)


def test_blocks_of_one_run_share_their_common_episodes(tmp_path: Path) -> None:
    """Memory from 2 and from 3 training games of one split: games 0-1 and the no-memory
    episodes are played once and recorded under both blocks."""
    small = {**ENV, "label": "from 2", "train_episodes": 2}
    large = {**ENV, "label": "from 3"}
    out = tmp_path / "blocks"
    run(config(env=[small, large]), out)
    col, ev = {}, {}
    with RunDB(out / "run.db") as db:
        for r in db.episodes(phase="collect"):
            col[(r.env, r.episode)] = (r.wall_s, db.trajectory(r.id).actions, r.seed)
        for r in db.episodes(phase="eval"):
            ev[(r.env, r.arm, r.episode)] = (r.wall_s, db.trajectory(r.id).actions, r.seed)
    assert len(col) == 5 and len(ev) == 12
    # A shared episode carries the one play's wall time; a separate play never matches it.
    for e in (0, 1):
        assert col[("from 2", e)] == col[("from 3", e)]
    for e in range(3):
        assert ev[("from 2", "no-memory", e)] == ev[("from 3", "no-memory", e)]
        # Memory arms read their own block's memory: played in each block.
        assert ev[("from 2", "trajectory", e)][0] != ev[("from 3", "trajectory", e)][0]


def test_reuses_identical_units_and_plays_the_rest(run_a: Path, tmp_path: Path) -> None:
    new = {"name": "skills-no-llm", "memory": "trajectory", "mode": "executable",
           "use_llm": False}
    cfg_b = config(name="study-b", conditions=[NO_MEMORY, TRAJ, new])
    out = tmp_path / "b"
    s = run(cfg_b, out, reuse=[run_a])

    a_eval, b_eval = _episodes(run_a), _episodes(out)
    assert len(b_eval) == 9
    for (arm, e), b in b_eval.items():
        if arm == "skills-no-llm":  # the new condition was played here
            assert "reused_from" not in b["traj"].metadata
            continue
        a = a_eval[(arm, e)]
        assert _same_play(a, b)
        assert b["traj"].metadata["reused_from"] == str(run_a)
        assert b["traj"].metadata["condition"] == arm
        assert (b["row"].seed, b["row"].wall_s) == (a["row"].seed, a["row"].wall_s)

    a_col, b_col = _episodes(run_a, "collect"), _episodes(out, "collect")
    assert {k: v["traj"].id for k, v in b_col.items()} == {k: v["traj"].id for k, v in a_col.items()}

    with RunDB(run_a / "run.db") as db:
        a_mem = {m["build"]: m for m in db.memories()}
    with RunDB(out / "run.db") as db:
        b_mem = {m["build"]: m for m in db.memories()}
        reused = db.get_meta("reused")
        assert db.get_meta("fingerprint") == cfg_b.fingerprint()
    # The trajectory memory was copied (its record is the source's build), skills built here.
    assert set(b_mem) == {"trajectory", "skills"}
    copied = b_mem["trajectory"]
    assert Path(copied["path"]).parent == out / "memory" and Path(copied["path"]).is_file()
    for key in ("procedures", "wall_s", "prompt_tokens", "completion_tokens"):
        assert copied[key] == a_mem["trajectory"][key]
    assert reused == {str(run_a): {"collect": 3, "memories": 1, "eval": 6}}

    note = "6 evaluation episodes, 3 training episodes and 1 memory from " + str(run_a)
    assert note in (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["reused"] == reused
    assert s["reused"] == reused

    # Re-running without --reuse resumes: same fingerprint, nothing replayed or recounted.
    before = {k: v["row"].id for k, v in b_eval.items()}
    run(cfg_b, out)
    assert {k: v["row"].id for k, v in _episodes(out).items()} == before
    with RunDB(out / "run.db") as db:
        assert db.get_meta("reused") == reused


def test_changed_settings_are_played_anew(run_a: Path, tmp_path: Path) -> None:
    # Same condition name, different k: its episodes are played; the baseline, the
    # training episodes and the memory (k is not part of it) are still copied.
    out = tmp_path / "k3"
    run(config(name="k3", conditions=[NO_MEMORY, {**TRAJ, "k": 3}]), out, reuse=[run_a])
    eps = _episodes(out)
    assert all("reused_from" in v["traj"].metadata for (arm, _), v in eps.items()
               if arm == "no-memory")
    assert all("reused_from" not in v["traj"].metadata for (arm, _), v in eps.items()
               if arm == "trajectory")
    assert all(len(v["traj"].metadata["retrieved"]) == 3 for (arm, _), v in eps.items()
               if arm == "trajectory")
    with RunDB(out / "run.db") as db:
        assert db.get_meta("reused") == {str(run_a): {"collect": 3, "memories": 1, "eval": 3}}

    # A different step budget changes every unit: nothing is copied, the report says nothing.
    out = tmp_path / "steps"
    run(config(name="steps", env={**ENV, "max_steps": 20}), out, reuse=[run_a])
    assert not any("reused_from" in v["traj"].metadata for v in _episodes(out).values())
    with RunDB(out / "run.db") as db:
        assert db.get_meta("reused") is None
        assert len(db.episodes(phase="collect")) == 3 and len(db.memories()) == 1
    assert "Copied from earlier runs" not in (out / "report.md").read_text()


def test_memory_is_not_mixed_with_other_training_episodes(run_a: Path, tmp_path: Path) -> None:
    # A run that played its own training episodes (same identities, other trajectories)
    # must not take another run's memory, nor episodes that were played with it.
    cfg = config(name="own")
    out = tmp_path / "own"
    run(cfg, out)
    with RunDB(out / "run.db") as db:  # as if interrupted right after collecting
        db._db.execute("DELETE FROM episodes WHERE phase = 'eval'")
        db._db.execute("DELETE FROM memories")
        db._db.commit()
    for f in (out / "memory").glob("*.db*"):
        f.unlink()
    run(cfg, out, reuse=[run_a])
    eps = _episodes(out)
    assert all(("reused_from" in v["traj"].metadata) == (arm == "no-memory")
               for (arm, _), v in eps.items())
    with RunDB(out / "run.db") as db:
        assert db.get_meta("reused") == {str(run_a): {"eval": 3}}
        assert len(db.memories()) == 1


def test_updating_arm_reuses_only_its_first_group(tmp_path: Path) -> None:
    # After group 0 an updating arm reads memory this run's own update wrote.
    cfg = config(
        groups=2,
        env={**ENV, "train_episodes": 2, "eval_episodes": 4},
        conditions=[{"name": "vanilla", "memory": "trajectory", "mode": "executable",
                     "use_llm": False, "update": "vanilla"}],
    )
    run(cfg, tmp_path / "a")
    run(cfg.model_copy(update={"name": "again"}), tmp_path / "b", reuse=[tmp_path / "a"])
    eps = _episodes(tmp_path / "b")
    copied = {e for (_, e), v in eps.items() if "reused_from" in v["traj"].metadata}
    assert copied == {0, 1} and set(e for _, e in eps) == {0, 1, 2, 3}
    with RunDB(tmp_path / "b" / "run.db") as db:
        assert [(u["arm"], u["group"]) for u in db.updates()] == [("vanilla", 0)]


def test_reuse_refuses_what_is_not_another_run(run_a: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a run")
    with pytest.raises(InvalidInput, match=r"not a memp run directory .*--out directory"):
        run(config(name="x"), tmp_path / "x", reuse=[plain])
    with pytest.raises(InvalidInput, match="no such directory"):
        run(config(name="x"), tmp_path / "x", reuse=[tmp_path / "missing"])
    assert not (tmp_path / "x").exists()  # refused before anything was written
    # The run's own directory: resuming needs no --reuse; --fresh must not delete it first.
    with pytest.raises(InvalidInput, match="own --out directory"):
        run(config(), run_a, reuse=[run_a], fresh=True)
    assert (run_a / "run.db").is_file()


def test_cli_reuse(run_a: Path, tmp_path: Path) -> None:
    exp = tmp_path / "b.toml"
    exp.write_text(
        'name = "cli-b"\nmodels = ["scripted"]\nembedder = "hash"\n[agent]\nmax_steps = 30\n'
        '[[env]]\nname = "twx"\ntrain_episodes = 3\neval_episodes = 3\n'
        'options = { game = "twc", n = 12 }\n'
        '[[conditions]]\nname = "no-memory"\n'
        '[[conditions]]\nname = "trajectory"\nmemory = "trajectory"\nk = 2\n'
    )
    out = tmp_path / "b"
    r = CliRunner().invoke(app, ["run", str(exp), "--out", str(out), "--executor", "inline",
                                 "--no-progress", "--reuse", str(run_a)])
    assert r.exit_code == 0, r.output
    with RunDB(out / "run.db") as db:
        assert db.get_meta("reused") == {str(run_a): {"collect": 3, "memories": 1, "eval": 6}}
    assert f"reused 6 evaluation episodes from {run_a}" in r.output + (r.stderr or "")
    r = CliRunner().invoke(app, ["run", str(exp), "--out", str(out), "--reuse", str(out)])
    assert r.exit_code == 2 and "own --out directory" in r.output + (r.stderr or "")


def test_build_policy_study_shares_its_units_with_the_executable_studies() -> None:
    # The committed studies are written so that build_policy.toml copies what
    # executable_alfworld.toml and executable.toml already played; a drift in either
    # file would silently turn that into hours of replay.
    from memp.experiment.config import load_config

    root = Path(__file__).resolve().parents[2] / "experiments"
    build = load_config(root / "build_policy.toml")
    sources = [load_config(root / n) for n in ("executable_alfworld.toml", "executable.toml")]

    def ids(cfg, names):
        out = {}
        for env in cfg.env:
            for arm in cfg.arms():
                if arm.condition.name in names:
                    out[(env.key, names[arm.condition.name])] = [
                        eval_identity(cfg, env, arm, e, 0) for e in env.eval_indices()
                    ]
        return out

    shared = {"no-memory": "baseline", "proceduralization": "prompt", "trajectory-exec": "exec",
              "trajectory-exec-no-llm": "exec-no-llm"}
    theirs = {"no-memory": "baseline", "prompt-memory": "prompt", "executable": "exec",
              "executable-no-llm": "exec-no-llm"}
    mine = ids(build, shared)
    found: dict = {}
    for src in sources:
        found.update(ids(src, theirs))
    for key, idents in mine.items():
        assert key in found, f"{key} is played by no source study"
        assert idents == found[key][: len(idents)], key
    assert {k[0] for k in mine} == {"alfworld-like", "tw-cooking"}
    # and what is new in the build-policy study is really new
    new = ids(build, {"trajectory": "t", "script": "s"})
    played = {i for idents in found.values() for i in idents}
    assert not played & {i for v in new.values() for i in v}
