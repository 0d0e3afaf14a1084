"""Fixed 2-D sine-cosine position embeddings of the image tokens (ViT / MAE style).

Half of the channels encode the token's column, the other half its row, each with the
Transformer's 1-D sin/cos code at geometrically spaced frequencies. Being fixed, they need no
training and tell the encoder where each visible patch sits even when 75% are dropped.
"""

from __future__ import annotations

import torch

__all__ = ["sincos_1d", "sincos_2d"]


def sincos_1d(dim: int, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """``[len(positions), dim]``: ``sin(p * w_i)`` then ``cos(p * w_i)``, ``w_i = base^(-2i/dim)``."""
    if dim % 2:
        raise ValueError(f"1-D sin-cos embedding needs an even width, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64, device=positions.device) / (dim / 2.0)
    omega = base ** -omega
    angles = positions.reshape(-1, 1).to(torch.float64) * omega.reshape(1, -1)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).float()


def sincos_2d(dim: int, rows: int, cols: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``[rows * cols, dim]`` in raster order (row-major, as ``Conv2d(...).flatten(2)`` yields).

    Channels ``[0, dim/2)`` encode the column, ``[dim/2, dim)`` the row.
    """
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a width divisible by 4, got {dim}")
    row = torch.arange(rows, device=device).repeat_interleave(cols)
    col = torch.arange(cols, device=device).repeat(rows)
    return torch.cat([sincos_1d(dim // 2, col), sincos_1d(dim // 2, row)], dim=1)
