"""Small models and random batches shared by the ContraMAE tests."""

from __future__ import annotations

import torch

from pmx_contramae import BackboneConfig

#: 64 image tokens (32 px region, 4 px patches) like the paper's 8 x 8 grid, tiny widths
TINY = dict(
    image_size=32, patch_size=4, omics_dim=10, embed_dim=16, depth=2, num_heads=2,
    decoder_dim=8, decoder_depth=1, decoder_heads=2,
)


def tiny_config(**overrides) -> BackboneConfig:
    return BackboneConfig(**{**TINY, **overrides})


def random_batch(batch: int = 6, seed: int = 0, size: int = 32, omics_dim: int = 10, survival: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {
        "image": torch.randn(batch, 3, size, size, generator=g),
        "omics": torch.randn(batch, 3, omics_dim, generator=g),
    }
    if survival:
        out["time"] = torch.rand(batch, generator=g) * 100 + 1
        out["event"] = (torch.arange(batch) % 2 == 0).long()
    return out
