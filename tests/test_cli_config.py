"""The user-level config and the default database: the same memory from any folder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memp import config
from memp.cli import app
from memp.types import Step, Trajectory

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private HOME with XDG dirs; the real home is never read or written."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    for var in ("MEMP_DB", "MEMP_CONFIG", "MEMP_EMBEDDER", "MEMP_LLM"):
        monkeypatch.delenv(var, raising=False)
    return home


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"MEMP_EMBEDDER": "hash", "COLUMNS": "250"})


def add_one(tmp_path, task: str) -> None:
    f = tmp_path / f"{task.replace(' ', '_')}.jsonl"
    f.write_text(Trajectory(task=task, steps=[Step(action="look")]).model_dump_json())
    r = invoke("memory", "add", str(f), "--strategy", "trajectory")
    assert r.exit_code == 0, r.output


def test_the_default_database_does_not_depend_on_the_folder(home, tmp_path, monkeypatch):
    a, b = tmp_path / "project-a", tmp_path / "elsewhere"
    a.mkdir()
    b.mkdir()
    monkeypatch.chdir(a)
    add_one(tmp_path, "wash a plate")
    assert (home / "data" / "memp" / "memp.db").is_file()
    assert not (a / "memp.db").exists()
    monkeypatch.chdir(b)  # an MCP client starts memp from anywhere
    r = invoke("memory", "list", "--json")
    assert r.exit_code == 0, r.output
    assert [p["task"] for p in json.loads(r.output)] == ["wash a plate"]


def test_without_xdg_variables_the_default_is_under_home(home, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert config.default_db() == home / ".local" / "share" / "memp" / "memp.db"
    assert config.user_config_path() == home / ".config" / "memp" / "memp.toml"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # invalid per the spec: ignored
    assert config.default_db() == home / ".local" / "share" / "memp" / "memp.db"


def test_user_config_and_project_config(home, tmp_path, monkeypatch):
    user = home / "cfg" / "memp" / "memp.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[memp]\ndb = "mine.db"\nllm = "local:fast"\n')
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # A relative db in a config file is relative to that file, not to the folder.
    assert config.resolve("db") == (str(user.parent / "mine.db"), f"memp.toml ({user})")
    add_one(tmp_path, "heat an egg")
    assert (user.parent / "mine.db").is_file()

    # A memp.toml in the current folder wins, key by key.
    (work / "memp.toml").write_text('db = "project.db"\n')
    assert config.resolve("db").value == str(work / "project.db")
    assert config.resolve("llm").value == "local:fast"  # still from the user file
    r = invoke("memory", "list")
    assert r.exit_code == 2 and str(work / "project.db") in r.output
    # MEMP_DB and --db still come first.
    monkeypatch.setenv("MEMP_DB", str(user.parent / "mine.db"))
    assert "heat an egg" in invoke("memory", "list").output


def test_doctor_shows_the_config_files_and_the_resolved_db(home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ("doctor", "--quick", "--llm", "http://127.0.0.1:9/v1#m", "--embedder", "hash")
    r = runner.invoke(app, list(args), env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "config files read: none" in r.output
    assert f"database: {home / 'data' / 'memp' / 'memp.db'}" in r.output
    user = home / "cfg" / "memp" / "memp.toml"
    user.parent.mkdir(parents=True)
    user.write_text('db = "team.db"\n')
    (tmp_path / "memp.toml").write_text('embedder = "hash"\n')
    r = runner.invoke(app, list(args), env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert f"config files read: {user}, {tmp_path / 'memp.toml'}" in r.output
    assert f"database: {user.parent / 'team.db'}" in r.output
