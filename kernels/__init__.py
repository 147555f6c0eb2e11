"""Triton kernels for the spatial-pyramid family: fused SPP, PSPNet pooling, RoI-SPP and SPPF.

Public API (contracts in each docstring, tested against :mod:`kernels.reference`):

- :func:`spatial_pyramid_pool` / :class:`SpatialPyramidPool`
- :func:`upsample_concat` / :class:`UpsampleConcat`
- :func:`roi_spp` / :class:`RoISPP`
- :func:`sppf` / :class:`SPPF`

The operators are registered as ``torch.ops.spp_zoo.*`` on import.
"""

import torch.fx

#: Says that this top-level ``kernels`` is spp-zoo's: Hugging Face's PyPI package ``kernels`` (used by
#: transformers) installs the same import name, and ``zoo`` checks this before using it.
__distribution__ = "spp-zoo"

from . import reference
from .functional import roi_spp, spatial_pyramid_pool, sppf, upsample_concat
from .modules import SPPF, RoISPP, SpatialPyramidPool, UpsampleConcat

__all__ = [
    "SPPF",
    "RoISPP",
    "SpatialPyramidPool",
    "UpsampleConcat",
    "reference",
    "roi_spp",
    "spatial_pyramid_pool",
    "sppf",
    "upsample_concat",
]

# ``kernels.roi_spp(...)`` inside a traced forward is one FX node too (functional.py wraps its own names)
for _name in ("spatial_pyramid_pool", "upsample_concat", "roi_spp", "sppf"):
    torch.fx.wrap(_name)
del _name
