"""Pretrained weights on the Hugging Face Hub: the file layer (:mod:`zoo.hub.files`: download, verify,
cache, shipped copies; knows nothing of models) and the pretrained layer on top
(:mod:`zoo.hub.pretrained`: ``save_pretrained``, ``from_pretrained``, ``push_to_hub``, model cards)."""

from .files import (
    CONFIG_NAME,
    DEFAULT_HUB_ORG,
    WEIGHTS_NAME,
    HashMismatchError,
    HubUnavailableError,
    repo_id,
    shipped_directory,
)
from .pretrained import (
    download,
    from_pretrained,
    load_config,
    model_card,
    published_split,
    push_to_hub,
    save_pretrained,
)

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_HUB_ORG",
    "HashMismatchError",
    "HubUnavailableError",
    "WEIGHTS_NAME",
    "download",
    "from_pretrained",
    "load_config",
    "model_card",
    "published_split",
    "push_to_hub",
    "repo_id",
    "save_pretrained",
    "shipped_directory",
]
