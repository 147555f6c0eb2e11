"""The zoo's data: datasets (:mod:`~zoo.data.datasets`), the scene synthesis behind them
(:mod:`~zoo.data.synth`), ``torchvision.transforms.v2`` presets (:mod:`~zoo.data.transforms`) and the
files the package ships (glyphs, background photos, aerial trees, example images). Knows nothing of
models."""

from .datasets import *  # noqa: F403  (the datasets' public names, listed in zoo.data.datasets.__all__)
from .datasets import __all__ as _datasets_all

__all__ = list(_datasets_all)
