"""Tile subsampling and (time bin, censorship)-balanced sampling weights."""

from __future__ import annotations

import numpy as np
import torch

from pmx_cmta import balanced_sample_weights, balanced_sampler, subsample_tiles


def test_subsample_keeps_k_distinct_tiles_in_their_original_order():
    bag = torch.arange(100.0).unsqueeze(-1).repeat(1, 3)
    kept = subsample_tiles(bag, 10, generator=torch.Generator().manual_seed(0))
    assert kept.shape == (10, 3)
    ids = kept[:, 0]
    assert torch.all(ids[1:] > ids[:-1])  # sorted, hence distinct
    other = subsample_tiles(bag, 10, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(kept, other)


def test_subsample_leaves_small_bags_and_k_zero_alone():
    bag = torch.randn(1, 7, 4)
    assert subsample_tiles(bag, 7, dim=1) is bag
    assert subsample_tiles(bag, 0, dim=1) is bag
    assert subsample_tiles(bag, 3, dim=1).shape == (1, 3, 4)


def test_weights_give_every_bin_censorship_class_the_same_total():
    bins = np.array([0, 0, 0, 0, 1, 1, 2, 3, 3, 3])
    event = np.array([1, 1, 1, 0, 1, 0, 1, 1, 1, 0], dtype=bool)
    w = balanced_sample_weights(bins, event)
    classes = {(b, e) for b, e in zip(bins, event)}
    totals = {c: w[(bins == c[0]) & (event == c[1])].sum() for c in classes}
    assert np.allclose(list(totals.values()), len(bins))  # N / n_c * n_c = N for every class
    assert w[0] == 10 / 3 and w[3] == 10.0


def test_sampler_draws_rare_classes_about_as_often_as_common_ones():
    bins = np.array([0] * 90 + [1] * 10)
    event = np.ones(100, dtype=bool)
    sampler = balanced_sampler(bins, event, generator=torch.Generator().manual_seed(0))
    draws = np.array([i for _ in range(20) for i in sampler])
    share_rare = np.mean(bins[draws] == 1)
    assert len(draws) == 2000 and 0.4 < share_rare < 0.6  # 0.1 without balancing
