"""Where ALFWorld games are and which of them a split plays.

Data comes from, in order: ``data_dir`` (real ALFWorld data, an official split
archive, or a folder written by ``memp alfworld generate``),
``$ALFWORLD_DATA/json_2.1.1/<split>``, or the default cache of generated games
(``~/.cache/memp/alfworld/<split>-seed<S>``). Nothing here touches the engine: with no
games it would have nothing to do (or hang), so the data is found first.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path
from typing import Any

from memp.envs.alfworld.generate import MANIFEST, TASK_TYPES, default_cache_dir
from memp.errors import InvalidInput, MissingData

_HOW_TO_GET = (
    "Get ALFWorld games in one of two ways:\n"
    "  1. the official ALFWorld game files: set ALFWORLD_DATA (or pass --data / data_dir) to "
    "an unpacked folder (games in json_2.1.1/<split>/), to a split archive such as "
    "{split}.tar.xz, or to a folder holding the archives; on a machine with internet "
    "`alfworld-download` fetches them;\n"
    "  2. ALFWorld-like games generated locally from the layouts in the alfworld wheel: "
    "`memp alfworld generate --split {split} --games 60` (then use the default cache, or "
    "pass data_dir=<--out folder>)."
)


ENV_SPLITS: tuple[str, ...] = ("train", "valid_train", "valid_seen", "valid_unseen")
_ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz", ".tgz", ".tar")


def game_task_type(game: Path) -> str:
    """A game's task type: from ``traj_data.json`` where present (generated games and
    ALFRED-style data), else the first part of its task folder's name
    (``pick_heat_then_place_in_recep-Egg-None-Fridge-13/trial_.../game.tw-pddl``), which
    is all the official game files carry."""
    traj = game.parent / "traj_data.json"
    if traj.exists():
        with contextlib.suppress(OSError, json.JSONDecodeError, KeyError):
            return str(json.loads(traj.read_text())["task_type"])
    for folder in (game.parent.parent.name, game.parent.name):
        head = folder.split("-", 1)[0]
        if head in TASK_TYPES:
            return head
    raise InvalidInput(
        f"cannot tell the task type of {game}: its task folder should be named "
        f"<task type>-<object>-...  (one of {', '.join(TASK_TYPES)}) or hold traj_data.json"
    )


def _find_games(root: Path, task_types: set[str]) -> list[Path]:
    """Solvable games under ``root`` in a fixed order (the official collection rules:
    no ``movable`` or ``Sliced`` task variants, ``solvable`` set in the game file)."""
    games = []
    for path in sorted(root.rglob("game.tw-pddl")):
        s = str(path)
        if "movable" in s or "Sliced" in s:
            continue
        try:
            if game_task_type(path) not in task_types:
                continue
            if not json.loads(path.read_text()).get("solvable"):
                continue
        except (OSError, json.JSONDecodeError, InvalidInput):
            continue
        games.append(path)
    return games


def _interleave(games: list[Path]) -> list[Path]:
    by_type: dict[str, list[Path]] = {}
    for g in games:
        by_type.setdefault(game_task_type(g), []).append(g)
    # within a type, a fixed shuffle: sorted task folders run one object after another
    for t, q in by_type.items():
        random.Random(t).shuffle(q)
    queues = [by_type[t] for t in TASK_TYPES if t in by_type]
    out: list[Path] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def _unpack(archive: Path) -> Path:
    """An official split archive unpacked once into the cache; returns the unpacked root.

    Unpacked into a temporary folder and renamed into place, so a killed process never
    leaves a half-unpacked copy that looks complete.
    """
    import hashlib
    import shutil
    import tarfile
    import tempfile

    st = archive.stat()
    tag = hashlib.sha256(f"{archive.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    dest = default_cache_dir("official", 0).parent / "official" / f"{archive.name}-{tag[:12]}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        try:
            tmp.rename(dest)
        except OSError:  # another process unpacked it first
            if not dest.is_dir():
                raise
    except (OSError, tarfile.TarError) as exc:
        raise InvalidInput(
            f"cannot unpack {archive}: {exc}; is it an ALFWorld game archive?"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(_ARCHIVE_SUFFIXES)


def _candidates(base: Path, split: str) -> list[Path]:
    """Where a split's games may be under a user's path: an unpacked official folder
    (``<base>/json_2.1.1/<split>``, ``<base>/<split>``, or the split folder itself), an
    archive of a split, or a folder holding ``<split>.tar.xz`` as published."""
    if _is_archive(base):
        base = _unpack(base)
    out = [base / "json_2.1.1" / split, base / split]
    for suffix in _ARCHIVE_SUFFIXES:
        arch = base / f"{split}{suffix}"
        if _is_archive(arch):
            out.append(_unpack(arch) / "json_2.1.1" / split)
    out.append(base)
    return out


def resolve_data(split: str, data_dir: str | Path | None, seed: int = 0) -> tuple[Path, bool]:
    """Where the games of ``split`` are, and whether they are generated (ALFWorld-like).

    Raises :class:`MissingData` (without touching the engine) when there is nothing to play.
    """
    tried: list[Path] = []
    given = data_dir if data_dir is not None else os.environ.get("ALFWORLD_DATA") or None
    if given is not None:
        base = Path(given).expanduser()
        if not base.exists():
            source = "data_dir" if data_dir is not None else "ALFWORLD_DATA"
            raise MissingData(
                f"ALFWorld data path {base} ({source}) does not exist: point it at an unpacked "
                "official folder (holding json_2.1.1/<split>/), a split archive such as "
                f"{split}.tar.xz, or a folder holding the archives"
            )
        candidates = _candidates(base, split)
    else:
        candidates = [default_cache_dir(split, seed)]
    for cand in candidates:
        tried.append(cand)
        if cand.is_dir() and any(cand.rglob("game.tw-pddl")):
            generated = _manifest(cand)
            if generated is not None and generated.get("split") not in (None, split):
                raise InvalidInput(
                    f"{cand} holds generated games of split {generated.get('split')!r}, not {split!r}; "
                    f"generate the {split} split with `memp alfworld generate --split {split}`"
                )
            return cand, generated is not None
    where = ", ".join(str(t) for t in tried)
    raise MissingData(
        f"no ALFWorld games for split {split!r} (looked in: {where}).\n"
        + _HOW_TO_GET.format(split=split)
    )


def _manifest(folder: Path) -> dict[str, Any] | None:
    for d in (folder, *folder.parents[:2]):
        f = d / MANIFEST
        if f.exists():
            return json.loads(f.read_text())
    return None
