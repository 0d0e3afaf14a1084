"""pmx plugin for ContraMAE: contrastive alignment masked autoencoder for cancer survival.

Registers the ``contramae-vit`` encoder (cross-modal ViT; it builds the lightweight decoder
for pretraining), the ``contramae-pgc`` / ``contramae-gr`` / ``contramae-pr`` objectives, the
``concat-cox`` head and the ``contramae`` method. See docs/methods/contramae.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pmx
from pmx.lazy import lazy_exports

# Names are imported on first use (PEP 562) so that loading this plugin, which every `pmx`
# command does, does not import torch.
_MODULES = {
    "augment": "IMAGENET_MEAN IMAGENET_STD RegionAugment random_resized_boxes region_transform",
    "backbone": "BackboneConfig ContraMAEBackbone ContraMAEDecoder DecoderOutput EncoderOutput",
    "head": "ConcatCoxHead",
    "masking": "MaskPlan TokenMask gather_tokens random_token_mask sample_mask_plan unshuffle",
    "method": "ContraMAEMethod",
    "model": "ContraMAEPretrainModel ContraMAESurvivalModel PretrainOutputs count_parameters",
    "objectives": "GenomicsReconstruction PathologyGenomicsContrast PathologyReconstruction",
    "patches": "patchify unpatchify",
    "positions": "sincos_2d",
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names.split()}

if TYPE_CHECKING:
    from .augment import IMAGENET_MEAN, IMAGENET_STD, RegionAugment, random_resized_boxes, region_transform
    from .backbone import BackboneConfig, ContraMAEBackbone, ContraMAEDecoder, DecoderOutput, EncoderOutput
    from .head import ConcatCoxHead
    from .masking import MaskPlan, TokenMask, gather_tokens, random_token_mask, sample_mask_plan, unshuffle
    from .method import ContraMAEMethod
    from .model import ContraMAEPretrainModel, ContraMAESurvivalModel, PretrainOutputs, count_parameters
    from .objectives import GenomicsReconstruction, PathologyGenomicsContrast, PathologyReconstruction
    from .patches import patchify, unpatchify
    from .positions import sincos_2d


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__version__ = "0.1.0"

__all__ = [
    "BackboneConfig",
    "ConcatCoxHead",
    "ContraMAEBackbone",
    "ContraMAEDecoder",
    "ContraMAEMethod",
    "ContraMAEPretrainModel",
    "ContraMAESurvivalModel",
    "DecoderOutput",
    "EncoderOutput",
    "GenomicsReconstruction",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MaskPlan",
    "PathologyGenomicsContrast",
    "PathologyReconstruction",
    "PretrainOutputs",
    "RegionAugment",
    "TokenMask",
    "count_parameters",
    "gather_tokens",
    "patchify",
    "random_resized_boxes",
    "random_token_mask",
    "region_transform",
    "sample_mask_plan",
    "sincos_2d",
    "unpatchify",
    "unshuffle",
]


@pmx.hookimpl
def pmx_register_encoders(register):  # type: ignore[no-untyped-def]
    register("pmx_contramae.backbone:ContraMAEBackbone", name="contramae-vit")


@pmx.hookimpl
def pmx_register_objectives(register):  # type: ignore[no-untyped-def]
    register("pmx_contramae.objectives:PathologyGenomicsContrast", name="contramae-pgc")
    register("pmx_contramae.objectives:GenomicsReconstruction", name="contramae-gr")
    register("pmx_contramae.objectives:PathologyReconstruction", name="contramae-pr")


@pmx.hookimpl
def pmx_register_heads(register):  # type: ignore[no-untyped-def]
    register("pmx_contramae.head:ConcatCoxHead", name="concat-cox")


@pmx.hookimpl
def pmx_register_methods(register):  # type: ignore[no-untyped-def]
    register("pmx_contramae.method:ContraMAEMethod", name="contramae")
