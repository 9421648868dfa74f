"""Small sets of generated ALFWorld-like games shared by the skill tests (cached on disk)."""

from __future__ import annotations

import os
from pathlib import Path

# Three task types keep generation short while covering search, a transforming
# step (heat) and a two-entity task (look at X under the lamp).
TYPES = ("pick_and_place_simple", "pick_heat_then_place_in_recep", "look_at_obj_in_light")


def games_dir(split: str, n: int, seed: int = 3) -> Path:
    """Generate (once) ``n`` games of ``split`` and return their folder."""
    from memp.envs.alfworld_gen import generate

    root = Path(
        os.environ.get("MEMP_TEST_ALFWORLD", Path.home() / ".cache" / "memp" / "alfworld-tests")
    )
    out = root / f"{split}-seed{seed}-n{n}"
    generate(split, n, seed=seed, out=out, task_types=TYPES, progress=False)
    return out
