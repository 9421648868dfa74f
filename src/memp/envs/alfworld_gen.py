"""The ALFWorld game generator's former path: ``memp.envs.alfworld_gen`` is
:mod:`memp.envs.alfworld.generate` itself (the same module object, private names
included), so old imports and the manifests generated games carry keep working."""

import sys

from memp.envs.alfworld import generate

sys.modules[__name__] = generate
