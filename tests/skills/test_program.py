"""The typed Program: committed memory files load as they are and write the same JSON."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from memp.types import Procedure, Program, ProgramStep

REPORTS = Path(__file__).resolve().parents[2] / "reports"


def _stored_bodies() -> list[dict]:
    out = []
    for f in sorted(REPORTS.glob("*/memory/*.db")):
        db = sqlite3.connect(f"file:{f}?mode=ro", uri=True)
        try:
            out += [json.loads(b) for (b,) in db.execute("SELECT body FROM procedures")]
        finally:
            db.close()
    return [b for b in out if b.get("program") is not None]


def test_committed_programs_load_and_round_trip_unchanged() -> None:
    bodies = _stored_bodies()
    if not bodies:
        pytest.skip("no committed skill memory under reports/")
    ops = set()
    for body in bodies:
        proc = Procedure.model_validate(body)
        assert isinstance(proc.program, Program)
        again = json.loads(proc.model_dump_json())["program"]
        assert again == body["program"]
        # same keys in the same order, step by step
        assert [list(s) for s in again["steps"]] == [list(s) for s in body["program"]["steps"]]
        ops |= {s.op for s in proc.program.steps}
    assert ops == {"act", "find", "read"}


def test_steps_write_only_their_own_fields() -> None:
    act = ProgramStep(op="act", action="take {object} from {@}", at="@object")
    assert act.model_dump() == {"op": "act", "action": "take {object} from {@}", "at": "@object"}
    act.distinct = ["object"]
    assert act.model_dump()["distinct"] == ["object"]
    read = ProgramStep(op="read", action="read cookbook", slot="read1", before=["ingredients"])
    assert read.model_dump() == {
        "op": "read",
        "action": "read cookbook",
        "slot": "read1",
        "at": None,
        "before": ["ingredients"],
        "after": [],
    }
    prog = Program(key="put {object} in {target}", steps=[ProgramStep(op="find", what="object")])
    assert "priors" not in prog.model_dump()


def test_bad_steps_are_rejected() -> None:
    with pytest.raises(ValidationError, match="needs what"):
        ProgramStep(op="find")
    with pytest.raises(ValidationError, match="needs action, slot"):
        ProgramStep(op="read")
    with pytest.raises(ValidationError):
        ProgramStep(op="jump", action="x")
    with pytest.raises(ValidationError):
        Program.model_validate({"key": "k", "steps": [{"op": "act", "action": "x", "typo": 1}]})
