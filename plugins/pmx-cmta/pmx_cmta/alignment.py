"""CMTA's alignment objective: pull the cross-modal class tokens onto the intra-modal ones.

L_sim = 1/d (||p - p_hat||_1 + ||g - g_hat||_1)  (eq. 19), averaged over the batch.

The intra-modal side (p, g) is detached, so the loss only moves the decoders' translations
towards the encoders' representations (p_hat -> p, g_hat -> g), never the encoders towards
the translations. Without the detach the paper reports that both branches collapse onto the
information the modalities share (Table 2, "w/o Tensor Detaching": the largest drop).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

import pmx


def _distance(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "l1":
        return F.l1_loss(a, b)
    if metric == "mse":
        return F.mse_loss(a, b)
    return (1.0 - F.cosine_similarity(a, b, dim=-1)).mean()


class CMTAAlignment(pmx.Component, nn.Module):
    """L1 alignment of cross-modal to intra-modal class tokens, intra-modal side detached (eq. 19)."""

    kind: ClassVar[str] = "objective"
    name: ClassVar[str] = "cmta-alignment"
    version: ClassVar[str] = "1"

    class Config(pmx.ComponentConfig):
        detach: bool = pmx.Field(
            True, description="detach p and g (false = Table 2 ablation 'w/o Tensor Detaching')"
        )
        metric: Literal["l1", "mse", "cosine"] = pmx.Field(
            "l1", description="distance: l1 (paper), or mse / cosine (Fig. 3 alternatives)"
        )

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)

    def forward(self, outputs: Any, batch: Any = None) -> dict[str, torch.Tensor]:
        """``outputs`` has p, p_hat, g, g_hat ([batch, d]); returns align_p, align_g, align."""
        p, g = outputs.p, outputs.g
        if self.config.detach:
            p, g = p.detach(), g.detach()
        align_p = _distance(outputs.p_hat, p, self.config.metric)
        align_g = _distance(outputs.g_hat, g, self.config.metric)
        return {"align_p": align_p, "align_g": align_g, "align": align_p + align_g}
