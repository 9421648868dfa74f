"""Game data the environment tests share: where it lives and how it is built."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

# the official ALFWorld game files (data beside the repository, never copied into it)
ALFWORLD_SHARED = Path(__file__).resolve().parents[3] / "shared" / "alfworld"
TRAVELPLANNER = Path(__file__).parent / "fixtures" / "travelplanner"
TRAVELPLANNER_DB, TRAVELPLANNER_QUERIES = TRAVELPLANNER / "database", TRAVELPLANNER / "queries"


def generated_alfworld(tmp_path_factory: pytest.TempPathFactory, n: int) -> tuple[Path, object]:
    """``n`` generated valid_unseen games (seed 7) in one folder per session: every test
    asking for them shares it, and a later, larger request only adds games."""
    from memp.envs.alfworld_gen import generate

    out = tmp_path_factory.getbasetemp() / "alfworld_valid_unseen_seed7"
    return out, generate("valid_unseen", n, seed=7, out=out, progress=False)


def unpack_official_alfworld(root: Path) -> Path:
    """Six official valid_seen games (one per task type) unpacked into ``root`` as published."""
    archive = ALFWORLD_SHARED / "valid_seen.tar.xz"
    if not archive.exists():
        pytest.fail(f"the official ALFWorld games are expected at {archive}")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith("game.tw-pddl")]
        picked: dict[str, tarfile.TarInfo] = {}
        for m in sorted(members, key=lambda m: m.name):
            picked.setdefault(Path(m.name).parts[-3].split("-")[0], m)
        tar.extractall(root, members=list(picked.values()), filter="data")
    return root


def llm_steps(env: object, llm: object, episode: int) -> object:
    """Up to three steps of the ReAct agent with the real local model: each one an
    admissible action chosen by the model. Returns the trajectory."""
    from memp.agent import ReActAgent

    traj = ReActAgent(llm, max_steps=3).run(env, episode)
    assert 1 <= len(traj.steps) <= 3
    for step in traj.steps:
        assert step.info["valid"], step.info
        assert step.actor == "llm" and step.prompt_tokens > 0 and step.completion_tokens > 0
    return traj
