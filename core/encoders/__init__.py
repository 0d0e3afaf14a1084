"""Frozen tile encoders: the contract (:class:`TileEncoder`) and the built-in timm encoders.

The built-ins register through the same ``pmx_register_encoders`` hook as plugin encoders
(``pmx.encoders.timm_encoders`` is listed in ``pmx.plugins.BUILTIN_PLUGINS``). Importing this
package does not import torch or timm; building an encoder's network does.
"""

from .base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RANDOM_INIT_WARNING,
    TileEncoder,
    TileEncoderConfig,
)
from .timm_encoders import BUILTIN_ENCODERS, ResNet50Trunc, ViTB16, ViTS16
from .weights import WEIGHTS_DIR_ENV, file_sha256, read_state_dict, weights_env_var

__all__ = [
    "BUILTIN_ENCODERS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RANDOM_INIT_WARNING",
    "ResNet50Trunc",
    "TileEncoder",
    "TileEncoderConfig",
    "ViTB16",
    "ViTS16",
    "WEIGHTS_DIR_ENV",
    "file_sha256",
    "read_state_dict",
    "weights_env_var",
]
