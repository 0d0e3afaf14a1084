"""Tile subsampling, (time bin, censorship)-balanced sampling weights, and step planning."""

from __future__ import annotations

import numpy as np
import torch

import pytest

from pmx_cmta import balanced_sample_weights, balanced_sampler, subsample_tiles
from pmx_cmta.sampling import plan_steps


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


SIZES = np.array([3, 5, 3, 3, 7, 5, 3, 2])  # tiles per training bag


def _flat(steps):
    return sorted(i for step in steps for group in step for i in group)


def test_batch_one_is_one_patient_per_step_in_draw_order():
    order = [4, 0, 0, 7, 2]
    for by_size in (False, True):
        steps = plan_steps(order, SIZES, 1, by_size=by_size)
        assert steps == [[[4]], [[0]], [[0]], [[7]], [[2]]]


def test_accumulation_keeps_consecutive_draws_and_groups_equal_bags_within_a_step():
    order = [0, 1, 2, 3, 4, 5, 6, 7]
    steps = plan_steps(order, SIZES, 4)
    assert [sorted(i for g in s for i in g) for s in steps] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert steps[0] == [[0, 2, 3], [1]]  # the three 3-tile bags share one forward pass
    for step in steps:
        for group in step:
            assert len({SIZES[i] for i in group}) == 1


def test_grouping_by_size_makes_every_step_one_batched_forward_of_equal_bags():
    rng = np.random.default_rng(0)
    order = rng.choice(len(SIZES), size=40, replace=True)
    steps = plan_steps(order, SIZES, 3, by_size=True, rng=np.random.default_rng(1))
    assert _flat(steps) == sorted(order.tolist())  # every draw exactly once, duplicates kept
    for step in steps:
        assert len(step) == 1 and 1 <= len(step[0]) <= 3
        assert len({SIZES[i] for i in step[0]}) == 1
    full = [s for s in steps if len(s[0]) == 3]
    assert len(full) >= len(steps) - len(set(SIZES.tolist()))  # at most one partial step per size


def test_plan_rejects_a_zero_batch():
    with pytest.raises(ValueError, match="batch_size"):
        plan_steps([0], SIZES, 0)
