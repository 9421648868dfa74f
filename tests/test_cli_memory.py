"""`memp memory ...` end to end on real SQLite files (and PostgreSQL), hashing embedder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memp.cli import app
from memp.memory import Memory
from memp.types import Procedure, Step, Trajectory

runner = CliRunner()
ENV = {"MEMP_EMBEDDER": "hash", "COLUMNS": "250"}


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """No test reads or writes the real home: config and data dirs live in tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))
    for var in ("MEMP_DB", "MEMP_CONFIG", "MEMP_EMBEDDER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("postgres_url")


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env={**ENV, **(env or {})})


def run(*args: str, db) -> str:
    r = invoke("memory", *args, "--db", str(db))
    assert r.exit_code == 0, r.output
    return r.output


def procedure(pid: str, task: str, namespace: str = "default") -> Procedure:
    return Procedure(
        id=pid,
        namespace=namespace,
        task=task,
        environment="alfworld",
        build="trajectory",
        trajectory=Trajectory(task=task, steps=[Step(action="look")]),
    )


def seed(db: str, *procs: Procedure) -> None:
    from memp.embed.hashing import HashEmbedder

    for p in procs:
        with Memory(db, embedder=HashEmbedder(), namespace=p.namespace) as mem:
            mem.add_procedure(p)


def test_memory_cli_round_trip(tmp_path):
    db = tmp_path / "cli.db"
    trajs = [
        Trajectory(
            task="put a clean apple in fridge",
            environment="alfworld",
            success=True,
            steps=[Step(action="take apple 1"), Step(action="put apple 1 in/on fridge 1")],
        ),
        Trajectory(
            task="boil water",
            environment="scienceworld",
            success=False,
            steps=[Step(action="focus on water")],
        ),
    ]
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(t.model_dump_json() for t in trajs))
    assert "added 1 procedure(s) from 2" in run(
        "add", str(f), "--strategy", "trajectory", "--only-success", db=db
    )
    out = run("list", db=db)
    assert "put a clean apple in fridge" in out and "boil water" not in out
    block = run("search", "clean apple", "--render", db=db)
    assert "[1] Task: put a clean apple in fridge" in block and "> take apple 1" in block
    from memp.store.sqlite import SQLiteStore

    with SQLiteStore(db) as s:
        proc_id = s.list()[0].id
    shown = json.loads(run("show", proc_id, "--json", db=db))
    assert shown["task"] == "put a clean apple in fridge" and "embedding" not in shown
    assert "v1" in run("history", proc_id, db=db)
    run("export", str(tmp_path / "e.jsonl"), db=db)
    run("retire", proc_id, db=db)
    assert "put a clean" not in run("search", "clean apple", db=db)
    assert "retired" in run("list", "--status", "all", db=db)
    assert "'retired': 1" in run("stats", db=db)
    out = run("import", str(tmp_path / "e.jsonl"), db=tmp_path / "copy.db")
    assert "imported 2 record(s)" in out  # the procedure and its trajectory


def test_memory_cli_errors_are_clear(tmp_path):
    db = tmp_path / "cli.db"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "x", "steps": [{"thought": "hm"}]}\n')
    r = invoke("memory", "add", str(bad), "--db", str(db), "--strategy", "trajectory")
    assert r.exit_code == 2 and "line 1" in r.output and "steps.0.action" in r.output
    r = invoke("memory", "add", str(bad), "--db", str(db), "--strategy", "plan")
    assert r.exit_code == 2 and "valid choices: executable, proceduralization, script, trajectory" in r.output
    seed(str(db), procedure("p1", "wash a plate"))
    r = invoke("memory", "show", "nope", "--db", str(db))
    assert r.exit_code == 2 and "no procedure 'nope'" in r.output


# --- one database resolution; a missing database is an error for readers -------------

READERS = [
    ("list",),
    ("show", "abc"),
    ("history", "abc"),
    ("search", "wash a plate"),
    ("stats",),
    ("export", "out.jsonl"),
]


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_reading_a_missing_database_fails_and_creates_nothing(tmp_path, command):
    typo = tmp_path / "tpyo.db"
    r = invoke("memory", *command, "--db", str(typo))
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no memory database at ")
    assert str(typo) in lines[0] and "--db" in lines[0]
    assert not typo.exists() and not (tmp_path / "out.jsonl").exists()


def test_memory_commands_use_the_db_of_memp_toml(tmp_path):
    (tmp_path / "memp.toml").write_text('[memp]\ndb = "project.db"\n')
    seed(str(tmp_path / "project.db"), procedure("p1", "wash a plate"))
    r = invoke("memory", "list")
    assert r.exit_code == 0, r.output
    assert "wash a plate" in r.output
    assert not (tmp_path / "memp.db").exists()  # the old cwd default is not created
    # precedence: --db > MEMP_DB > memp.toml
    seed(str(tmp_path / "env.db"), procedure("p2", "heat an egg"))
    seed(str(tmp_path / "flag.db"), procedure("p3", "cool a mug"))
    r = invoke("memory", "list", env={"MEMP_DB": str(tmp_path / "env.db")})
    assert "heat an egg" in r.output and "wash a plate" not in r.output
    r = invoke(
        "memory",
        "list",
        "--db",
        str(tmp_path / "flag.db"),
        env={"MEMP_DB": str(tmp_path / "env.db")},
    )
    assert "cool a mug" in r.output and "heat an egg" not in r.output


def test_writers_create_the_database(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text(
        Trajectory(task="wash a plate", steps=[Step(action="go to sink")]).model_dump_json()
    )
    new = tmp_path / "new.db"
    r = invoke("memory", "add", str(f), "--strategy", "trajectory", "--db", str(new))
    assert r.exit_code == 0, r.output
    assert new.is_file()


# --- namespaces: -n everywhere, honoured by import and stats ---------------------------


def test_namespace_is_honoured_by_import_and_stats(db, tmp_path):
    seed(db, procedure("a1", "wash a plate", "team-a"), procedure("b1", "heat an egg", "team-b"))
    seed(db, procedure("b2", "cool a mug", "team-b"))
    stats = json.loads(run("stats", "-n", "team-b", "--json", db=db))
    assert stats["namespace"] == "team-b" and stats["procedures"]["active"] == 2
    stats = json.loads(run("stats", "--namespace", "team-a", "--json", db=db))
    assert stats["procedures"]["active"] == 1
    assert set(stats["store namespaces"]) == {"team-a", "team-b"}

    export = tmp_path / "a.jsonl"
    run("export", str(export), "-n", "team-a", db=db)
    other = str(tmp_path / "other.db")
    assert "into namespace 'team-a'" in run("import", str(export), "-n", "team-a", db=other)
    listed = json.loads(run("list", "-n", "team-a", "--json", db=other))
    assert [p["id"] for p in listed] == ["a1"] and listed[0]["namespace"] == "team-a"
    assert json.loads(run("list", "--json", db=other)) == []
    # Records of another namespace are refused, not silently put somewhere else.
    r = invoke("memory", "import", str(export), "-n", "team-b", "--db", str(tmp_path / "x.db"))
    assert r.exit_code == 2 and "team-a" in r.output and "team-b" in r.output


def test_counts_are_not_spelt_n():
    for command in (["collect"], ["alfworld", "generate"]):
        r = invoke(*command, "--help")
        assert r.exit_code == 0
        assert "--n " not in r.output  # -n is a namespace; counts have their own names
    assert "--episodes" in invoke("collect", "--help").output
    assert "--games" in invoke("alfworld", "generate", "--help").output
    assert "-n" in invoke("collect", "--help").output


# --- ids: whole, prefixes, JSON ---------------------------------------------------------


def test_list_prints_whole_ids_even_on_a_narrow_terminal(tmp_path):
    db = str(tmp_path / "store.db")
    p = procedure(Procedure(task="x").id, "put a clean apple in the fridge and then go")
    seed(db, p)
    r = runner.invoke(app, ["memory", "list", "--db", db], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert p.id in r.output  # whole, on one line, copyable


def test_id_prefixes_and_json_output(db):
    seed(db, procedure("aaaa1111", "wash a plate"), procedure("aaaa2222", "heat an egg"))
    shown = json.loads(run("show", "aaaa1", "--json", db=db))
    assert shown["id"] == "aaaa1111"
    history = json.loads(run("history", "aaaa2", "--json", db=db))
    assert [v["version"] for v in history] == [1] and history[0]["id"] == "aaaa2222"
    r = invoke("memory", "show", "aaaa", "--db", db)
    assert r.exit_code == 2 and "ambiguous" in r.output
    assert "aaaa1111" in r.output and "aaaa2222" in r.output
    r = invoke("memory", "history", "zzz", "--db", db)
    assert r.exit_code == 2 and "no procedure 'zzz'" in r.output
    assert "retired aaaa2222" in run("retire", "aaaa2", db=db)

    listed = json.loads(run("list", "--status", "all", "--json", db=db))
    assert {p["id"]: p["status"] for p in listed} == {"aaaa1111": "active", "aaaa2222": "retired"}
    assert all("embedding" not in p for p in listed)
    hits = json.loads(run("search", "wash a plate", "--json", db=db))
    assert hits[0]["procedure"]["id"] == "aaaa1111" and isinstance(hits[0]["score"], float)
    stats = json.loads(run("stats", "--json", db=db))
    assert stats["procedures"] == {"active": 1, "retired": 1}
