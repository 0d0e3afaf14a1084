"""Per-sample random token masking and its inverse (MAE's shuffle / un-shuffle).

A :class:`TokenMask` says, for each sample, which tokens the encoder sees (``keep``, in their
original order) and how to put ``[visible..., masked...]`` back into the original order
(``restore``). Every sample masks the same number of tokens so visible tokens stack into one
``[B, n_keep, D]`` tensor. ContraMAE masks exactly one of the three omics tokens and 75% of the
image patches per sample (:func:`sample_mask_plan`).

Masks draw from torch's global RNG unless a generator is given, so the trainer's RNG capture /
restore reproduces them when a group objective re-runs a micro-batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TokenMask", "MaskPlan", "random_token_mask", "sample_mask_plan", "gather_tokens", "unshuffle"]


@dataclass(frozen=True)
class TokenMask:
    """Which of ``length`` tokens each sample keeps visible."""

    keep: torch.Tensor  #: [B, n_keep] indices of the visible tokens, ascending
    masked: torch.Tensor  #: [B, n_masked] indices of the masked tokens, ascending
    restore: torch.Tensor  #: [B, length] where each original token sits in [visible, masked]
    mask: torch.Tensor  #: [B, length] 1.0 = masked (to reconstruct), 0.0 = visible

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])

    @property
    def n_keep(self) -> int:
        return int(self.keep.shape[1])

    @property
    def n_masked(self) -> int:
        return self.length - self.n_keep


@dataclass(frozen=True)
class MaskPlan:
    """The masks of one pretraining step: omics tokens and image patches (either may be absent)."""

    omics: TokenMask | None
    image: TokenMask | None


def random_token_mask(
    batch: int,
    length: int,
    n_masked: int,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> TokenMask:
    """Mask ``n_masked`` of ``length`` tokens per sample, uniformly at random."""
    if not 0 <= n_masked < length:
        raise ValueError(f"can mask 0..{length - 1} of {length} tokens (at least one stays visible), got {n_masked}")
    noise = torch.rand(batch, length, device=device, generator=generator)
    order = torch.argsort(noise, dim=1)
    n_keep = length - n_masked
    keep = torch.sort(order[:, :n_keep], dim=1).values
    dropped = torch.sort(order[:, n_keep:], dim=1).values
    shuffle = torch.cat([keep, dropped], dim=1)
    restore = torch.argsort(shuffle, dim=1)
    mask = torch.ones(batch, length, device=noise.device)
    mask.scatter_(1, keep, 0.0)
    return TokenMask(keep=keep, masked=dropped, restore=restore, mask=mask)


def sample_mask_plan(
    batch: int,
    *,
    n_omics: int,
    n_patches: int,
    omics_masked: int = 1,
    mask_ratio: float = 0.75,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> MaskPlan:
    """ContraMAE's masks: ``omics_masked`` omics tokens and ``int(L * ratio)``-ish image patches.

    The number of visible patches is ``int(L * (1 - mask_ratio))`` as in MAE (64 patches at
    0.75 -> 16 visible, 48 masked). ``n_omics = 0`` / ``n_patches = 0`` leave that modality out.
    """
    omics = None
    image = None
    if n_omics > 0:
        omics = random_token_mask(batch, n_omics, omics_masked, device, generator)
    if n_patches > 0:
        n_keep = int(n_patches * (1.0 - mask_ratio))
        if n_keep < 1:
            raise ValueError(f"mask_ratio {mask_ratio} leaves no visible patch of {n_patches}")
        image = random_token_mask(batch, n_patches, n_patches - n_keep, device, generator)
    return MaskPlan(omics=omics, image=image)


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b]]`` for ``x`` [B, L, D] and ``index`` [B, K] -> [B, K, D]."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def unshuffle(visible: torch.Tensor, mask_token: torch.Tensor, mask: TokenMask) -> torch.Tensor:
    """Re-insert ``mask_token`` for the masked tokens and restore the original order."""
    batch, n_keep, dim = visible.shape
    if n_keep != mask.n_keep:
        raise ValueError(f"{n_keep} visible tokens but the mask keeps {mask.n_keep}")
    fill = mask_token.to(visible.dtype).expand(batch, mask.n_masked, dim)
    return gather_tokens(torch.cat([visible, fill], dim=1), mask.restore)
