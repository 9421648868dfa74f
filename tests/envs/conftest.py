"""Fixtures the environment tests share (game data unpacked once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from env_data import unpack_official_alfworld


@pytest.fixture(scope="session")
def official_alfworld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six official valid_seen games (one per task type)."""
    return unpack_official_alfworld(tmp_path_factory.mktemp("official"))
