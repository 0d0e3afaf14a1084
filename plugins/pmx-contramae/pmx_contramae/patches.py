"""Images <-> rows of patch pixels, in the raster order of the patch-embedding conv's tokens."""

from __future__ import annotations

import torch

__all__ = ["patchify", "patchify_chw", "unpatchify"]


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, (H/p)(W/p), p * p * C]`` (pixel layout: row, column, channel)."""
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"image {h}x{w} is not a multiple of the patch size {patch}")
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(rows: torch.Tensor, patch: int, channels: int = 3, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverse of :func:`patchify` (a square grid unless ``grid = (rows, cols)`` is given)."""
    b, n, _ = rows.shape
    if grid is None:
        side = int(round(n ** 0.5))
        if side * side != n:
            raise ValueError(f"{n} patches do not form a square grid; pass grid=(rows, cols)")
        grid = (side, side)
    gh, gw = grid
    x = rows.reshape(b, gh, gw, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, channels, gh * patch, gw * patch)


def patchify_chw(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Like :func:`patchify` but each row is laid out (channel, row, column) - the order of a
    ``Conv2d(C, d, kernel=stride=patch)`` weight's ``flatten(1)``, so that
    ``patchify_chw(x) @ w.flatten(1).T + b`` equals the conv's tokens."""
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"image {h}x{w} is not a multiple of the patch size {patch}")
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // patch) * (w // patch), c * patch * patch)
