"""PPEG: TransMIL's pyramid position encoding generator, CMTA's positional signal for tiles.

A bag has no fixed geometry, so the tile tokens are laid out row-major on the smallest square
grid that holds them and three depthwise convolutions (7, 5, 3) add a conditional position
encoding: x + conv7(x) + conv5(x) + conv3(x). The class token bypasses the convolutions.

The grid is filled by repeating tokens from the start of the bag, as in the reference; unlike
the reference, those repeated tokens are dropped again after the convolution, so the token
count is unchanged and the duplicates never receive extra weight in later attention layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def square_side(n: int) -> int:
    """Side of the smallest square grid holding ``n`` tokens."""
    if n < 1:
        raise ValueError(f"need at least one token, got {n}")
    return math.isqrt(n - 1) + 1


class PPEG(nn.Module):
    """x + DWConv7(x) + DWConv5(x) + DWConv3(x) on the tokens padded to a square grid."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj7 = nn.Conv2d(dim, dim, 7, 1, 3, groups=dim)
        self.proj5 = nn.Conv2d(dim, dim, 5, 1, 2, groups=dim)
        self.proj3 = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [batch, 1 + n, dim] (class token first) -> same shape."""
        b, tokens, dim = x.shape
        cls_token, feats = x[:, :1], x[:, 1:]
        n = tokens - 1
        side = square_side(n)
        if side * side > n:
            wrap = torch.arange(side * side - n, device=x.device) % n
            feats = torch.cat([feats, feats[:, wrap]], dim=1)
        grid = feats.transpose(1, 2).reshape(b, dim, side, side)
        grid = grid + self.proj7(grid) + self.proj5(grid) + self.proj3(grid)
        feats = grid.flatten(2).transpose(1, 2)[:, :n]
        return torch.cat([cls_token, feats], dim=1)
