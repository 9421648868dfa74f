"""The environment registry: names, lazy imports, clear errors for missing packages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from memp.envs import env_names, make_env
from memp.errors import UnknownOption


def test_names_cover_every_environment() -> None:
    assert env_names() == ["alfworld", "scienceworld", "textworld", "travelplanner", "twx"]


def test_unknown_environment_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownOption) as err:
        make_env("webshop")
    msg = str(err.value)
    assert "webshop" in msg
    for name in env_names():
        assert name in msg


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_importing_memp_envs_loads_no_simulator() -> None:
    proc = _run(
        """
        import sys
        import memp, memp.envs, memp.agent, memp.policies
        heavy = [m for m in ("scienceworld", "textworld", "textworld_express", "alfworld") if m in sys.modules]
        print(heavy)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("env", "module", "package"),
    [
        ("scienceworld", "scienceworld", "scienceworld"),
        ("textworld", "textworld", "textworld"),
        ("twx", "textworld_express", "textworld-express"),
    ],
)
def test_missing_optional_package_says_how_to_install(env: str, module: str, package: str) -> None:
    # A None entry in sys.modules makes `import module` fail as if it were not installed.
    proc = _run(
        f"""
        import sys
        sys.modules[{module!r}] = None
        from memp.envs import make_env
        from memp.errors import MissingDependency
        try:
            make_env({env!r})
        except MissingDependency as e:
            print("MISSING:", e)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "MISSING:" in proc.stdout
    assert package in proc.stdout
    assert "pip install 'memp[envs]'" in proc.stdout


@pytest.mark.parametrize(("env", "simulator"), [("scienceworld", "ScienceWorld"), ("twx", "TextWorldExpress")])
def test_missing_java_is_a_clear_error_and_does_not_hang(env: str, simulator: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    environ["PATH"] = os.path.dirname(sys.executable)  # python only, no java
    code = f"""
        from memp.envs import make_env
        from memp.errors import MissingDependency
        try:
            make_env({env!r})
        except MissingDependency as e:
            print("ERR:", e)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=environ, capture_output=True, text=True, timeout=120
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"ERR: {simulator} runs on Java" in proc.stdout
    assert "openjdk" in proc.stdout and "JAVA_HOME" in proc.stdout
