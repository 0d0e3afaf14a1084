"""pmx plugin for CMTA: Cross-Modal Translation and Alignment for Survival Analysis (ICCV 2023).

Registers the ``cmta-backbone`` encoder, the ``cmta-alignment`` objective and the ``cmta``
method; the survival head is pmx's ``discrete-time`` head. See docs/methods/cmta.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pmx
from pmx.lazy import lazy_exports

# Names are imported on first use (PEP 562) so that loading this plugin, which every `pmx`
# command does, does not import torch.
_MODULES = {
    "alignment": "CMTAAlignment",
    "backbone": "CMTABackbone CMTAOutputs",
    "method": "CMTAMethod",
    "model": "CMTAForward CMTAModel build_optimizer",
    "nystrom": "NystromAttention NystromLayer iterative_pinv segment_means",
    "ppeg": "PPEG",
    "sampling": "balanced_sample_weights balanced_sampler subsample_tiles",
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names.split()}

if TYPE_CHECKING:
    from .alignment import CMTAAlignment
    from .backbone import CMTABackbone, CMTAOutputs
    from .method import CMTAMethod
    from .model import CMTAForward, CMTAModel, build_optimizer
    from .nystrom import NystromAttention, NystromLayer, iterative_pinv, segment_means
    from .ppeg import PPEG
    from .sampling import balanced_sample_weights, balanced_sampler, subsample_tiles


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__version__ = "0.1.0"

__all__ = [
    "CMTAAlignment",
    "CMTABackbone",
    "CMTAForward",
    "CMTAMethod",
    "CMTAModel",
    "CMTAOutputs",
    "NystromAttention",
    "NystromLayer",
    "PPEG",
    "balanced_sample_weights",
    "balanced_sampler",
    "build_optimizer",
    "iterative_pinv",
    "segment_means",
    "subsample_tiles",
]


@pmx.hookimpl
def pmx_register_encoders(register):  # type: ignore[no-untyped-def]
    register("pmx_cmta.backbone:CMTABackbone", name="cmta-backbone")


@pmx.hookimpl
def pmx_register_objectives(register):  # type: ignore[no-untyped-def]
    register("pmx_cmta.alignment:CMTAAlignment", name="cmta-alignment")


@pmx.hookimpl
def pmx_register_methods(register):  # type: ignore[no-untyped-def]
    register("pmx_cmta.method:CMTAMethod", name="cmta")
