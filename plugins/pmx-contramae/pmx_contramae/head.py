"""``concat-cox``: ContraMAE's Cox layer (paper eq. 12, the code's fine-tuning classifier).

Each pooled representation (mean omics encodings, mean image encodings) goes through one
*shared* LayerNorm (the code's ``fc_norm``), the results are concatenated and a linear layer
gives the risk. Everything else (dropout, the optional sigmoid bound of the code, the Cox
partial-likelihood loss with Breslow/Efron ties) is pmx's :class:`~pmx.survival.heads.CoxHead`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

import pmx
from pmx.survival.heads import CoxHead

from .amp import fp32

__all__ = ["ConcatCoxHead"]


class ConcatCoxHead(CoxHead):
    """Shared LayerNorm on each pooled representation, concatenation, Linear -> Cox risk."""

    name: ClassVar[str] = "concat-cox"
    version: ClassVar[str] = "1"

    class Config(CoxHead.Config):
        in_dim: int = pmx.Field(1536, ge=1, description="width of the concatenation (parts x encoder width)")
        parts: int = pmx.Field(2, ge=1, description="pooled representations concatenated (2: omics, image; 1 for unimodal runs)")
        norm: bool = pmx.Field(True, description="shared LayerNorm on each part before concatenation (the code's fc_norm)")
        norm_eps: float = pmx.Field(1e-6, gt=0, description="LayerNorm epsilon")
        bias: bool = pmx.Field(True, description="bias of the linear layer (the code has one; it cancels in the unbounded Cox loss)")

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        cfg = self.config
        if cfg.in_dim % cfg.parts:
            raise pmx.ConfigError(f"head 'concat-cox': in_dim {cfg.in_dim} is not divisible by parts {cfg.parts}")
        self.norm = nn.LayerNorm(cfg.in_dim // cfg.parts, eps=cfg.norm_eps) if cfg.norm else nn.Identity()

    def forward(self, *representations: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if len(representations) != self.config.parts:
            raise ValueError(f"concat-cox expects {self.config.parts} representations, got {len(representations)}")
        # fp32 under autocast: bf16 risks (8-bit mantissa) would tie patients the C-index must rank
        with fp32(representations[0].device):
            return super().forward(torch.cat([self.norm(r.float()) for r in representations], dim=-1))
