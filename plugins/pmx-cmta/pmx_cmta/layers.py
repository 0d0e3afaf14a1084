"""CMTA's building blocks: SNN omics blocks, class-token Nystrom encoders, cross-modal attention."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .nystrom import NystromLayer
from .ppeg import PPEG


def snn_block(in_dim: int, out_dim: int, dropout: float = 0.25) -> nn.Sequential:
    """Self-normalising block (Klambauer et al.): Linear, ELU, AlphaDropout, as in MCAT/CMTA."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ELU(), nn.AlphaDropout(p=dropout))


class TokenEncoder(nn.Module):
    """Prepend a learnable class token, then layer, [PPEG], layer, LayerNorm.

    With ``ppeg=True`` this is CMTA's pathology encoder (eqs. 4-6) and the decoder that produces
    the pathology-space representation p_hat (eqs. 15-17); with ``ppeg=False`` it is the
    genomics encoder (eqs. 7-8) and the decoder producing g_hat (eqs. 13-14).
    """

    def __init__(self, dim: int, ppeg: bool, **attention: Any):
        super().__init__()
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim))
        nn.init.normal_(self.cls_token, std=1e-6)
        self.layer1 = NystromLayer(dim, **attention)
        self.ppeg = PPEG(dim) if ppeg else None
        self.layer2 = NystromLayer(dim, **attention)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens`` [batch, n, dim] -> (class token [batch, dim], instance tokens [batch, n, dim])."""
        h = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        h = self.layer1(h)
        if self.ppeg is not None:
            h = self.ppeg(h)
        h = self.layer2(h)
        h = self.norm(h)
        return h[:, 0], h[:, 1:]


class CrossAttention(nn.Module):
    """Single-head attention of ``query`` tokens over ``context`` tokens (eqs. 9-12).

    softmax((X_q W_q)(X_c W_k)^T / sqrt(d)) (X_c W_v), then an output projection. The paper
    writes the two directions with shared U, V and no biases; the authors' code (and the
    published parameter count) uses one full single-head attention per direction with biased
    q/k/v/out projections, which is what this is (4 d^2 + 4 d parameters).
    """

    def __init__(self, dim: int, dropout: float = 0.0):
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.scale = dim**-0.5

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[b, n_q, d], [b, n_c, d] -> (translated tokens [b, n_q, d], attention [b, n_q, n_c])."""
        scores = (self.q(query) * self.scale) @ self.k(context).transpose(-1, -2)
        attention = torch.softmax(scores, dim=-1)
        return self.out(self.dropout(attention) @ self.v(context)), attention


def init_weights(module: nn.Module) -> None:
    """The authors' initialisation: Xavier-normal Linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
