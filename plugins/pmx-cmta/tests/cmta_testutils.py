"""Helpers shared by the CMTA plugin tests: a tiny backbone config and random inputs."""

from __future__ import annotations

import torch

TINY = {
    "path_input_dim": 48,
    "path_hidden": [32, 16],
    "omic_sizes": [5, 7, 3, 9, 4, 6],
    "omic_hidden": [24, 16],
    "fusion_hidden": [16, 16],
    "heads": 2,
    "landmarks": 8,
    "residual_kernel": 5,
}


def random_inputs(n_tiles: int, batch: int | None = None, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A bag of ``n_tiles`` embeddings and the six gene-family vectors of the TINY config."""
    gen = torch.Generator().manual_seed(seed)
    lead = () if batch is None else (batch,)
    path = torch.randn(*lead, n_tiles, TINY["path_input_dim"], generator=gen)
    omics = [torch.randn(*lead, w, generator=gen) for w in TINY["omic_sizes"]]
    return path, omics
