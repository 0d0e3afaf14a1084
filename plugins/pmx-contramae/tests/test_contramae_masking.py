"""Masking, un-shuffling, patch layout and positions: the token bookkeeping of ContraMAE."""

from __future__ import annotations

import pytest
import torch

from pmx_contramae import (
    ContraMAEBackbone,
    gather_tokens,
    patchify,
    random_token_mask,
    sample_mask_plan,
    sincos_2d,
    unpatchify,
    unshuffle,
)
from pmx_contramae.positions import sincos_1d


def test_plan_masks_exactly_one_omics_token_and_75_percent_of_patches():
    g = torch.Generator().manual_seed(1)
    plan = sample_mask_plan(200, n_omics=3, n_patches=64, omics_masked=1, mask_ratio=0.75, generator=g)
    assert plan.omics is not None and plan.image is not None
    assert torch.all(plan.omics.mask.sum(1) == 1)
    assert plan.omics.keep.shape == (200, 2)
    assert torch.all(plan.image.mask.sum(1) == 48)  # 64 * 0.75
    assert plan.image.keep.shape == (200, 16)
    # every omics type gets masked for some samples (uniform choice), roughly a third each
    counts = plan.omics.mask.sum(0)
    assert torch.all(counts > 40) and counts.sum() == 200


def test_keep_indices_are_ascending_and_match_the_mask():
    m = random_token_mask(50, 20, 7, generator=torch.Generator().manual_seed(0))
    assert torch.all(m.keep[:, 1:] > m.keep[:, :-1])
    visible = torch.zeros(50, 20).scatter_(1, m.keep, 1.0)
    assert torch.equal(visible, 1.0 - m.mask)
    assert m.masked.shape == (50, 7) and torch.all(m.masked[:, 1:] > m.masked[:, :-1])
    assert torch.equal(torch.sort(torch.cat([m.keep, m.masked], 1), 1).values, torch.arange(20).expand(50, -1))
    assert torch.all(torch.gather(m.mask, 1, m.masked) == 1.0)


def test_masks_differ_between_samples_and_calls():
    a = random_token_mask(8, 64, 48)
    b = random_token_mask(8, 64, 48)
    assert not torch.equal(a.mask, b.mask)
    assert len({tuple(row.tolist()) for row in a.keep}) > 1


def test_unshuffle_restores_the_original_order_with_mask_tokens_in_the_gaps():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 12, 4, generator=g)
    m = random_token_mask(5, 12, 9, generator=g)
    mask_token = torch.full((1, 1, 4), 7.0)
    restored = unshuffle(gather_tokens(x, m.keep), mask_token, m)
    assert restored.shape == x.shape
    masked = m.mask.bool()
    assert torch.equal(restored[~masked], x[~masked])
    assert torch.all(restored[masked] == 7.0)


def test_unshuffle_rejects_a_wrong_number_of_visible_tokens():
    m = random_token_mask(2, 10, 5)
    with pytest.raises(ValueError, match="visible"):
        unshuffle(torch.zeros(2, 4, 3), torch.zeros(1, 1, 3), m)


def test_mask_ratio_that_hides_every_patch_is_refused():
    with pytest.raises(ValueError):
        sample_mask_plan(2, n_omics=3, n_patches=4, mask_ratio=0.9)
    with pytest.raises(ValueError):
        random_token_mask(2, 3, 3)


def test_patchify_roundtrip_and_order_matches_the_patch_embedding_conv():
    images = torch.randn(2, 3, 16, 24)
    rows = patchify(images, 4)
    assert rows.shape == (2, 4 * 6, 4 * 4 * 3)
    assert torch.equal(unpatchify(rows, 4, grid=(4, 6)), images)
    # token t of the conv (flatten(2)) is patch (t // 6, t % 6): a conv summing its patch's
    # pixels must equal the row sums of patchify.
    conv = torch.nn.Conv2d(3, 1, kernel_size=4, stride=4, bias=False)
    torch.nn.init.ones_(conv.weight)
    tokens = conv(images).flatten(2).transpose(1, 2)[..., 0]
    assert torch.allclose(tokens, rows.sum(-1), atol=1e-5)


def test_sincos_positions_are_distinct_bounded_and_start_at_sin0_cos1():
    pos = sincos_2d(16, 8, 8)
    assert pos.shape == (64, 16)
    assert torch.all(pos.abs() <= 1.0)
    assert torch.allclose(pos[0], torch.tensor([0.0] * 4 + [1.0] * 4 + [0.0] * 4 + [1.0] * 4))
    assert torch.cdist(pos, pos).add(torch.eye(64)).min() > 1e-3  # all 64 positions differ
    # first half encodes the column, second half the row (raster order)
    assert torch.equal(pos[1, 8:], pos[0, 8:]) and not torch.equal(pos[1, :8], pos[0, :8])
    assert torch.equal(pos[8, :8], pos[0, :8]) and not torch.equal(pos[8, 8:], pos[0, 8:])
    one = sincos_1d(4, torch.tensor([2.0]))
    assert torch.allclose(one, torch.tensor([[torch.sin(torch.tensor(2.0)), torch.sin(torch.tensor(0.02)),
                                              torch.cos(torch.tensor(2.0)), torch.cos(torch.tensor(0.02))]]))


def test_backbone_uses_fixed_sincos_for_image_tokens():
    backbone = ContraMAEBackbone(image_size=32, patch_size=4, embed_dim=16, depth=1, num_heads=2,
                                 omics_dim=10, decoder_dim=8, decoder_heads=2, decoder_depth=1)
    assert torch.equal(backbone.image_pos[0], sincos_2d(16, 8, 8))
    assert "image_pos" not in dict(backbone.named_parameters())
    assert backbone.omics_pos.requires_grad  # learned omics type embeddings (paper)
    zeros = ContraMAEBackbone(backbone.config, omics_positions="zeros")
    assert "omics_pos" not in dict(zeros.named_parameters()) and torch.all(zeros.omics_pos == 0)
