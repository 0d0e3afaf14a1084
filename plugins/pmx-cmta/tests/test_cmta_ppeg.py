"""PPEG: shapes for square and non-square bags, class-token bypass, grid locality."""

from __future__ import annotations

import pytest
import torch

from pmx_cmta.ppeg import PPEG, square_side


@pytest.mark.parametrize("n,side", [(1, 1), (2, 2), (4, 2), (5, 3), (9, 3), (10, 4), (17, 5), (100, 10), (101, 11)])
def test_square_side_is_the_smallest_square_holding_n(n, side):
    assert square_side(n) == side
    assert side * side >= n > (side - 1) * (side - 1)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 16, 17, 50])
def test_shape_is_preserved_and_class_token_bypasses_the_convolutions(n):
    torch.manual_seed(n)
    ppeg = PPEG(8)
    x = torch.randn(2, 1 + n, 8)
    out = ppeg(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out[:, 0], x[:, 0])
    assert not torch.allclose(out[:, 1:], x[:, 1:])


def test_zero_convolutions_give_the_identity():
    ppeg = PPEG(4)
    with torch.no_grad():
        for p in ppeg.parameters():
            p.zero_()
    x = torch.randn(1, 1 + 13, 4)
    torch.testing.assert_close(ppeg(x), x)


def test_parameters_are_three_depthwise_convolutions():
    dim = 256
    assert sum(p.numel() for p in PPEG(dim).parameters()) == dim * (49 + 25 + 9) + 3 * dim == 22_016


def test_tokens_are_laid_out_row_major_on_the_grid():
    """On a 10x10 grid the 7x7 conv reaches 3 cells: tile 0 at (0, 0) cannot move tile 99 at (9, 9)."""
    torch.manual_seed(0)
    ppeg = PPEG(4).double()
    x = torch.randn(1, 1 + 100, 4, dtype=torch.float64)
    bumped = x.clone()
    bumped[0, 1 + 0] += 1.0
    delta = (ppeg(bumped) - ppeg(x)).abs().sum(-1)[0, 1:]
    changed = {i for i in range(100) if delta[i] > 1e-12}
    expected = {r * 10 + c for r in range(4) for c in range(4)}  # within 3 rows and 3 columns
    assert changed == expected


def test_padding_repeats_the_first_tiles_and_is_dropped_again():
    """10 tiles on a 4x4 grid: cells 10..15 hold copies of tiles 0..5, so tile 0 also moves
    the neighbours of cell 10 = (2, 2); the output still has 10 tiles."""
    torch.manual_seed(1)
    ppeg = PPEG(2).double()
    with torch.no_grad():  # keep only the 3x3 conv so the reach is one cell
        ppeg.proj7.weight.zero_()
        ppeg.proj5.weight.zero_()
    x = torch.randn(1, 1 + 10, 2, dtype=torch.float64)
    bumped = x.clone()
    bumped[0, 1 + 0] += 1.0
    out = ppeg(x)
    assert out.shape == (1, 11, 2)
    delta = (ppeg(bumped) - out).abs().sum(-1)[0, 1:]
    changed = {i for i in range(10) if delta[i] > 1e-12}
    # neighbours of (0, 0): cells 0, 1, 4, 5; neighbours of (2, 2) among real tiles: 5, 6, 7, 9
    assert changed == {0, 1, 4, 5, 6, 7, 9}
