"""pmx plugin for CMTA: Cross-Modal Translation and Alignment for Survival Analysis (ICCV 2023).

Registers the ``cmta-backbone`` encoder, the ``cmta-alignment`` objective and the ``cmta``
method; the survival head is pmx's ``discrete-time`` head. See docs/methods/cmta.md.
"""

from __future__ import annotations

import pmx

from .alignment import CMTAAlignment
from .backbone import CMTABackbone, CMTAOutputs
from .method import CMTAMethod
from .model import CMTAForward, CMTAModel, build_optimizer
from .nystrom import NystromAttention, NystromLayer, iterative_pinv, segment_means
from .ppeg import PPEG
from .sampling import balanced_sample_weights, balanced_sampler, subsample_tiles

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
    register(CMTABackbone)


@pmx.hookimpl
def pmx_register_objectives(register):  # type: ignore[no-untyped-def]
    register(CMTAAlignment)


@pmx.hookimpl
def pmx_register_methods(register):  # type: ignore[no-untyped-def]
    register(CMTAMethod)
