"""Errors are one line that says what to do: from the real `memp` command (a subprocess)
and from the HTTP service, which never shows a client the server's paths."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

import memp
from memp.server.http import Service, create_app, running
from memp.types import Step, Trajectory


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("MEMP_", "XDG_"))}
    return {
        **keep,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "cfg"),
        "XDG_DATA_HOME": str(home / "data"),
        "MEMP_EMBEDDER": "hash",
        "COLUMNS": "200",
    }


def memp_cmd(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memp", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(r: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for text in expected:
        assert text in lines[0]


def test_version(env, tmp_path):
    r = memp_cmd("--version", env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"memp {memp.__version__}"


def test_malformed_memp_toml_is_one_line(env, tmp_path):
    (tmp_path / "memp.toml").write_text('[memp]\nllm = "local\n')
    r = memp_cmd("doctor", "--quick", env=env, cwd=tmp_path)
    one_line_error(r, str(tmp_path / "memp.toml"), "not valid TOML", "line 2")


def test_unknown_mcp_transport_is_one_line(env, tmp_path):
    r = memp_cmd("mcp", "--transport", "sse", env=env, cwd=tmp_path)
    one_line_error(r, "unknown MCP transport 'sse'", "http, stdio")


def test_revoking_an_unknown_key_is_one_line_and_prefixes_work(env, tmp_path):
    db = str(tmp_path / "keys.db")
    created = memp_cmd("keys", "create", "team-a", "--db", db, env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.strip().split("_")[1]  # memp_<id>_<secret>
    one_line_error(
        memp_cmd("keys", "revoke", "nosuchkey", "--db", db, env=env, cwd=tmp_path),
        "no API key 'nosuchkey'",
        "memp keys list",
    )
    r = memp_cmd("keys", "revoke", key_id[:5], "--db", db, env=env, cwd=tmp_path)
    assert r.returncode == 0 and f"revoked key {key_id}" in r.stdout, r.stderr
    # A mistyped --db is reported, not created.
    typo = tmp_path / "kyes.db"
    one_line_error(
        memp_cmd("keys", "list", "--db", str(typo), env=env, cwd=tmp_path), "no memory database"
    )
    assert not typo.exists()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_http_errors_do_not_reveal_where_the_store_is(backend, request, tmp_path):
    db = (
        str(tmp_path / "private" / "memp.db")
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    if backend == "sqlite":
        (tmp_path / "private").mkdir()
    svc = Service(db, embedder="hash", llm="none")
    _, token = svc.keys.create("default")
    try:
        with running(create_app(db, service=svc)) as url:
            h = {"authorization": f"Bearer {token}"}
            traj = Trajectory(task="wash a plate", steps=[Step(action="go to sink")])
            body = {"trajectory": traj.model_dump(mode="json"), "build": "trajectory"}
            assert httpx.post(f"{url}/v1/trajectories", json=body, headers=h).status_code == 201
            export = httpx.get(f"{url}/v1/export", headers=h).content
            # Importing the same procedure again is refused: the message names the
            # record, not the server's file or database URL.
            r = httpx.post(f"{url}/v1/import", content=export, headers=h)
            assert r.status_code == 422, r.text
            message = r.json()["error"]["message"]
            assert "already exists" in message
            for secret in (str(tmp_path), db.split("?")[0], "private/memp.db", "postgresql://"):
                assert secret not in r.text
    finally:
        svc.close()


def test_a_file_that_cannot_be_written_is_one_line(env, tmp_path):
    db = str(tmp_path / "m.db")
    f = tmp_path / "t.jsonl"
    f.write_text(Trajectory(task="wash a plate", steps=[Step(action="look")]).model_dump_json())
    added = memp_cmd("memory", "add", str(f), "-s", "trajectory", "--db", db, env=env, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    target = tmp_path / "no" / "such" / "e.jsonl"
    r = memp_cmd("memory", "export", str(target), "--db", db, env=env, cwd=tmp_path)
    one_line_error(r, "No such file or directory", str(target))


def test_an_interrupted_run_says_how_to_resume(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import memp.experiment.runner
    from memp.cli import app

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(memp.experiment.runner, "run_experiment", interrupted)
    toml = tmp_path / "exp.toml"
    toml.write_text(
        'name = "x"\nmodels = ["scripted"]\nembedder = "hash"\n'
        '[env]\nname = "twx"\n[[conditions]]\nname = "no-memory"\n'
    )
    r = CliRunner().invoke(app, ["run", str(toml), "--out", str(tmp_path / "run")])
    assert r.exit_code == 130, r.output
    assert r.output.strip() == (
        "interrupted: finished episodes are saved; re-run the same command to resume"
    )
