"""ContraMAE's three pretext objectives (paper section II-B), each a registered ``objective``.

* **PGC** (pathology-genomics contrastive, eqs. 8-11): symmetric InfoNCE between the mean of
  the visible omics encodings and the mean of the visible image-patch encodings of the
  encoder, over the batch (N positives, N^2 - N negatives), features L2-normalised and scaled
  by a learnable logit scale initialised at ln(1/0.07) and clamped at 100 as in CLIP.
* **GR** (genomics reconstruction): Linear(decoder_dim, omics_dim) on the decoder's omics
  tokens; MSE against the input vector on the masked omics token only.
* **PR** (pathology reconstruction): Linear(decoder_dim, patch^2 * 3) on the decoder's patch
  tokens; pixel MSE against the (normalised) input patch on the masked patches only.

The reconstruction objectives return one loss per sample so that a trainer can concatenate
them across micro-batches and ranks next to PGC's features (a group objective).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

import pmx

from .amp import fp32
from .masking import gather_tokens
from .patches import patchify

__all__ = ["GenomicsReconstruction", "PathologyGenomicsContrast", "PathologyReconstruction", "masked_mse_per_sample"]


def masked_mse_per_sample(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B]``: mean over each sample's masked tokens of the per-token MSE (visible tokens ignored).

    ``pred``/``target`` are ``[B, T, F]``, ``mask`` ``[B, T]`` with 1 = masked. A sample without
    a masked token contributes 0.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    per_token = (pred.float() - target.float()).pow(2).mean(dim=-1)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)



def _predictor(in_dim: int, out_dim: int) -> nn.Linear:
    """A reconstruction head: linear, Xavier-uniform weights and zero bias (MAE's init)."""
    layer = nn.Linear(in_dim, out_dim)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer

class PathologyGenomicsContrast(pmx.Component, nn.Module):
    """PGC: CLIP-style symmetric contrastive loss between mean omics and mean image encodings."""

    kind: ClassVar[str] = "objective"
    name: ClassVar[str] = "contramae-pgc"
    version: ClassVar[str] = "1"

    class Config(pmx.ComponentConfig):
        init_temperature: float = pmx.Field(0.07, gt=0, description="initial temperature (logit scale ln(1/T))")
        max_logit_scale: float = pmx.Field(100.0, gt=0, description="clamp of exp(logit scale) as in CLIP (the authors' code has none)")
        learnable: bool = pmx.Field(True, description="learn the temperature (false = fixed at init_temperature)")
        normalize: bool = pmx.Field(True, description="L2-normalise both representations (cosine logits, as CLIP and the code)")

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        value = torch.tensor(math.log(1.0 / self.config.init_temperature))
        if self.config.learnable:
            self.logit_scale = nn.Parameter(value)
        else:
            self.register_buffer("logit_scale", value)

    def scale(self) -> torch.Tensor:
        """``exp(logit_scale)`` clamped at ``max_logit_scale`` (no gradient while clamped)."""
        return self.logit_scale.clamp(max=math.log(self.config.max_logit_scale)).exp()

    def logits(self, omics_repr: torch.Tensor, image_repr: torch.Tensor) -> torch.Tensor:
        """``[N, N]`` image-to-omics logits; row i's positive is column i.

        Computed in fp32 even under autocast: at a logit scale of 100, bf16 logits would be
        off by about 0.4 (an N x N x d product costs nothing next to the encoder).
        """
        with fp32(omics_repr.device):
            o, p = omics_repr.float(), image_repr.float()
            if self.config.normalize:
                o = F.normalize(o, dim=-1)
                p = F.normalize(p, dim=-1)
            return self.scale() * p @ o.t()

    def forward(self, omics_repr: torch.Tensor, image_repr: torch.Tensor) -> torch.Tensor:
        if omics_repr.shape != image_repr.shape or omics_repr.ndim != 2:
            raise ValueError(f"PGC needs two [N, d] tensors, got {tuple(omics_repr.shape)} and {tuple(image_repr.shape)}")
        logits = self.logits(omics_repr, image_repr)
        labels = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


class GenomicsReconstruction(pmx.Component, nn.Module):
    """GR: predict the masked omics vector from the decoder's omics token (MSE, masked token only)."""

    kind: ClassVar[str] = "objective"
    name: ClassVar[str] = "contramae-gr"
    version: ClassVar[str] = "1"

    class Config(pmx.ComponentConfig):
        in_dim: int = pmx.Field(512, ge=1, description="decoder width")
        omics_dim: int = pmx.Field(300, ge=1, description="features per omics type")

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.predictor = _predictor(self.config.in_dim, self.config.omics_dim)

    def forward(self, decoded_omics: torch.Tensor) -> torch.Tensor:
        """``[B, n_omics, in_dim]`` -> reconstructed omics ``[B, n_omics, omics_dim]``."""
        return self.predictor(decoded_omics)

    def per_sample(self, pred: torch.Tensor, omics: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mse_per_sample(pred, omics, mask)


class PathologyReconstruction(pmx.Component, nn.Module):
    """PR: predict the pixels of the masked patches from the decoder's patch tokens (MSE)."""

    kind: ClassVar[str] = "objective"
    name: ClassVar[str] = "contramae-pr"
    version: ClassVar[str] = "1"

    class Config(pmx.ComponentConfig):
        in_dim: int = pmx.Field(512, ge=1, description="decoder width")
        patch_size: int = pmx.Field(128, ge=1, description="patch edge in pixels")
        in_chans: int = pmx.Field(3, ge=1, description="image channels")
        norm_pix: bool = pmx.Field(False, description="per-patch normalised pixel targets (MAE option; off in the paper's code)")

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        cfg = self.config
        self.predictor = _predictor(cfg.in_dim, cfg.patch_size * cfg.patch_size * cfg.in_chans)

    def forward(self, decoded_image: torch.Tensor) -> torch.Tensor:
        """``[B, L, in_dim]`` -> patch pixels ``[B, L, p * p * C]`` (layout of :func:`patchify`)."""
        return self.predictor(decoded_image)

    def targets(self, images: torch.Tensor) -> torch.Tensor:
        target = patchify(images, self.config.patch_size)
        if self.config.norm_pix:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        return target

    def per_sample(self, pred: torch.Tensor, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-sample loss from predictions of *every* patch ``[B, L, p*p*C]`` and the 0/1 mask."""
        return masked_mse_per_sample(pred, self.targets(images), mask)

    def predict_masked(self, decoded_image: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Pixels of the masked patches only, ``[B, M, p*p*C]`` (``masked``: [B, M] patch indices).

        The loss never reads the visible patches' predictions, so pretraining skips them (a
        quarter of this 25M-parameter projection's work at the paper preset).
        """
        return self.predictor(gather_tokens(decoded_image, masked))

    def per_sample_masked(self, pred_masked: torch.Tensor, images: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Per-sample mean pixel MSE over the masked patches (``pred_masked`` from :meth:`predict_masked`)."""
        target = gather_tokens(self.targets(images), masked)
        return (pred_masked.float() - target.float()).pow(2).mean(dim=-1).mean(dim=1)
