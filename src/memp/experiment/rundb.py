"""The run database: one SQLite file per run holding every finished episode.

Only the coordinating process writes it (workers return results), so there is a single
writer. A re-run opens the same file and skips the episodes, memories and updates that
are already recorded: runs are resumable at episode granularity.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memp.errors import InvalidInput, NotFound, StoreError
from memp.types import Trajectory

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS episodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    phase TEXT NOT NULL,              -- 'collect' (training split) or 'eval'
    env TEXT NOT NULL,
    arm TEXT NOT NULL,                -- condition label (eval) or source (collect)
    model TEXT,
    split TEXT NOT NULL,
    episode INTEGER NOT NULL,
    grp INTEGER NOT NULL DEFAULT 0,
    seed INTEGER NOT NULL,
    task TEXT,
    success INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    reward REAL NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    wall_s REAL NOT NULL DEFAULT 0,
    trajectory TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    UNIQUE (phase, env, arm, split, episode)
);
CREATE TABLE IF NOT EXISTS memories (
    env TEXT NOT NULL, source TEXT NOT NULL, build TEXT NOT NULL, builder TEXT NOT NULL,
    path TEXT NOT NULL, procedures INTEGER NOT NULL, wall_s REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    built_at TEXT NOT NULL,
    PRIMARY KEY (env, source, build, builder)
);
CREATE TABLE IF NOT EXISTS updates (
    env TEXT NOT NULL, arm TEXT NOT NULL, grp INTEGER NOT NULL,
    report TEXT NOT NULL, wall_s REAL NOT NULL, done_at TEXT NOT NULL,
    PRIMARY KEY (env, arm, grp)
);
CREATE TABLE IF NOT EXISTS errors (      -- the latest error of each unit not yet done
    what TEXT PRIMARY KEY, message TEXT NOT NULL, at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class EpisodeRow:
    id: int
    phase: str
    env: str
    arm: str
    model: str | None
    split: str
    episode: int
    group: int
    seed: int
    task: str | None
    success: bool
    steps: int
    reward: float
    prompt_tokens: int
    completion_tokens: int
    wall_s: float
    finished_at: str

    def trajectory(self, db: RunDB) -> Trajectory:
        return db.trajectory(self.id)


_COLS = (
    "id, phase, env, arm, model, split, episode, grp, seed, task, success, steps, reward, "
    "prompt_tokens, completion_tokens, wall_s, finished_at"
)


class RunDB:
    """The database of one run (``<run dir>/run.db``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a memp run database ({e})") from None
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif int(version) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer memp (run schema {version}); upgrade memp"
            )

    @classmethod
    def open_existing(cls, run: str | Path) -> RunDB:
        p = Path(run)
        db = p / "run.db" if p.is_dir() else p
        if not db.is_file():
            raise NotFound(f"no run database at {db}; list runs with `memp runs list`")
        return cls(db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta -----------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- episodes ---------------------------------------------------------------
    def add_episode(
        self,
        *,
        phase: str,
        env: str,
        arm: str,
        model: str | None,
        split: str,
        episode: int,
        group: int,
        seed: int,
        trajectory: Trajectory,
        wall_s: float,
    ) -> int:
        if phase not in ("collect", "eval"):
            raise InvalidInput(f"phase must be 'collect' or 'eval', got {phase!r}")
        t = trajectory
        with self._db:
            cur = self._db.execute(
                "INSERT OR REPLACE INTO episodes (phase, env, arm, model, split, episode, grp, "
                "seed, task, success, steps, reward, prompt_tokens, completion_tokens, wall_s, "
                "trajectory, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    phase,
                    env,
                    arm,
                    model,
                    split,
                    episode,
                    group,
                    seed,
                    t.task,
                    int(bool(t.success)),
                    len(t.steps),
                    float(t.reward),
                    t.prompt_tokens,
                    t.completion_tokens,
                    wall_s,
                    t.model_dump_json(),
                    _now(),
                ),
            )
        return int(cur.lastrowid or 0)

    def done_keys(self, phase: str) -> set[tuple[str, str, str, int]]:
        rows = self._db.execute(
            "SELECT env, arm, split, episode FROM episodes WHERE phase = ?", (phase,)
        )
        return {(r[0], r[1], r[2], int(r[3])) for r in rows}

    def episodes(
        self, *, phase: str | None = "eval", env: str | None = None, arm: str | None = None
    ) -> list[EpisodeRow]:
        sql = f"SELECT {_COLS} FROM episodes WHERE 1=1"
        args: list[Any] = []
        for col, val in (("phase", phase), ("env", env), ("arm", arm)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        sql += " ORDER BY id"
        return [_row(r) for r in self._db.execute(sql, args)]

    def episode(self, episode_id: int) -> EpisodeRow:
        r = self._db.execute(f"SELECT {_COLS} FROM episodes WHERE id = ?", (episode_id,)).fetchone()
        if r is None:
            raise NotFound(f"run {self.path.parent} has no episode #{episode_id}")
        return _row(r)

    def find_episode(self, *, arm: str, episode: int, env: str | None = None) -> EpisodeRow:
        rows = [r for r in self.episodes(phase=None, arm=arm, env=env) if r.episode == episode]
        if not rows:
            raise NotFound(f"no episode {episode} for condition {arm!r} in {self.path.parent}")
        if len(rows) > 1:
            envs = sorted({r.env for r in rows})
            raise InvalidInput(
                f"episode {episode} of {arm!r} exists in several envs {envs}; pass --env"
            )
        return rows[0]

    def trajectory(self, episode_id: int) -> Trajectory:
        r = self._db.execute(
            "SELECT trajectory FROM episodes WHERE id = ?", (episode_id,)
        ).fetchone()
        if r is None:
            raise NotFound(f"run {self.path.parent} has no episode #{episode_id}")
        return Trajectory.model_validate_json(r[0])

    def trajectories(self, *, phase: str, env: str, arm: str) -> list[Trajectory]:
        rows = self._db.execute(
            "SELECT trajectory FROM episodes WHERE phase = ? AND env = ? AND arm = ? "
            "ORDER BY episode",
            (phase, env, arm),
        )
        return [Trajectory.model_validate_json(r[0]) for r in rows]

    # -- memories and updates ---------------------------------------------------
    def add_memory(
        self,
        *,
        env: str,
        source: str,
        build: str,
        builder: str,
        path: str,
        procedures: int,
        wall_s: float,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO memories VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    env,
                    source,
                    build,
                    builder,
                    path,
                    procedures,
                    wall_s,
                    prompt_tokens,
                    completion_tokens,
                    _now(),
                ),
            )

    def memory(self, *, env: str, source: str, build: str, builder: str) -> dict[str, Any] | None:
        cur = self._db.execute(
            "SELECT * FROM memories WHERE env=? AND source=? AND build=? AND builder=?",
            (env, source, build, builder),
        )
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def memories(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM memories ORDER BY env, source, build")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def add_update(self, *, env: str, arm: str, group: int, report: Any, wall_s: float) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO updates VALUES (?,?,?,?,?,?)",
                (env, arm, group, json.dumps(report, default=str), wall_s, _now()),
            )

    def update_done(self, *, env: str, arm: str, group: int) -> bool:
        r = self._db.execute(
            "SELECT 1 FROM updates WHERE env=? AND arm=? AND grp=?", (env, arm, group)
        ).fetchone()
        return r is not None

    def updates(self) -> list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT env, arm, grp, report, wall_s FROM updates ORDER BY env, arm, grp"
        )
        return [
            {"env": r[0], "arm": r[1], "group": r[2], "report": json.loads(r[3]), "wall_s": r[4]}
            for r in cur.fetchall()
        ]

    def add_error(self, what: str, message: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO errors (what, message, at) VALUES (?,?,?)",
                (what, message, _now()),
            )

    def clear_error(self, what: str) -> None:
        """A unit that failed before and has now succeeded."""
        with self._db:
            self._db.execute("DELETE FROM errors WHERE what = ?", (what,))

    def errors(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT what, message, at FROM errors ORDER BY at, what")
        return [{"what": r[0], "message": r[1], "at": r[2]} for r in cur.fetchall()]


def _row(r: tuple[Any, ...]) -> EpisodeRow:
    return EpisodeRow(
        id=r[0],
        phase=r[1],
        env=r[2],
        arm=r[3],
        model=r[4],
        split=r[5],
        episode=r[6],
        group=r[7],
        seed=r[8],
        task=r[9],
        success=bool(r[10]),
        steps=r[11],
        reward=r[12],
        prompt_tokens=r[13],
        completion_tokens=r[14],
        wall_s=r[15],
        finished_at=r[16],
    )
