"""Nystrom attention against exact softmax attention, segment means and the iterative pinv."""

from __future__ import annotations

import pytest
import torch

from pmx_cmta.nystrom import NystromAttention, NystromLayer, iterative_pinv, segment_means


def exact_attention(att: NystromAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_head)) V with the module's own projections, computed directly."""
    b, n, _ = x.shape
    qkv = x @ att.to_qkv.weight.T
    q, k, v = (t.view(b, n, att.heads, att.dim_head).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    weights = torch.softmax(q @ k.transpose(-1, -2) / att.dim_head**0.5, dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(b, n, -1)
    return att.to_out[0](out)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs().max() / b.abs().max()).detach())


@pytest.mark.parametrize("n", [1, 2, 7, 16, 33])
def test_close_to_exact_attention_when_landmarks_cover_the_sequence(n):
    torch.manual_seed(n)
    att = NystromAttention(32, heads=4, landmarks=max(n, 8), residual=False).double().eval()
    x = torch.randn(2, n, 32, dtype=torch.float64)
    # six pinv iterations (the paper's setting): close, not exact
    assert relative_error(att(x), exact_attention(att, x)) < 0.05


@pytest.mark.parametrize("n", [7, 33])
def test_exact_attention_once_the_pseudo_inverse_has_converged(n):
    torch.manual_seed(0)
    att = NystromAttention(32, heads=4, landmarks=n, pinv_iterations=30, residual=False).double().eval()
    x = torch.randn(3, n, 32, dtype=torch.float64)
    torch.testing.assert_close(att(x), exact_attention(att, x), rtol=1e-9, atol=1e-9)


def test_fewer_landmarks_approximate_and_differ_from_exact():
    torch.manual_seed(1)
    att = NystromAttention(32, heads=4, landmarks=4, residual=False).double().eval()
    x = torch.randn(1, 50, 32, dtype=torch.float64)
    out = att(x)
    assert out.shape == (1, 50, 32) and torch.isfinite(out).all()
    assert relative_error(out, exact_attention(att, x)) > 1e-6  # landmarks really are used


def test_residual_conv_adds_a_depthwise_conv_of_the_values():
    torch.manual_seed(2)
    with_res = NystromAttention(16, heads=2, landmarks=4, residual=True, residual_kernel=5).double().eval()
    without = NystromAttention(16, heads=2, landmarks=4, residual=False).double().eval()
    without.load_state_dict({k: v for k, v in with_res.state_dict().items() if not k.startswith("res_conv")})
    assert with_res.res_conv.weight.numel() == 2 * 5  # one 5x1 filter per head, no bias
    x = torch.randn(1, 9, 16, dtype=torch.float64)
    v = (x @ with_res.to_qkv.weight.T).chunk(3, dim=-1)[2].view(1, 9, 2, 8).transpose(1, 2)
    extra = with_res.res_conv(v).transpose(1, 2).reshape(1, 9, 16) @ with_res.to_out[0].weight.T
    torch.testing.assert_close(with_res(x), without(x) + extra)


def test_layer_is_pre_norm_residual_without_mlp():
    layer = NystromLayer(16, heads=2, landmarks=4)
    assert {name.split(".")[0] for name, _ in layer.named_parameters()} == {"norm", "attn"}
    with torch.no_grad():
        layer.attn.to_out[0].weight.zero_()
        layer.attn.to_out[0].bias.zero_()
    x = torch.randn(1, 5, 16)
    torch.testing.assert_close(layer(x), x)  # attention branch zeroed -> identity


@pytest.mark.parametrize("n,m", [(12, 4), (10, 4), (7, 7), (5, 1), (33, 8)])
def test_segment_means_are_means_of_contiguous_near_equal_segments(n, m):
    x = torch.randn(2, 3, n, 4, dtype=torch.float64)
    means = segment_means(x, m)
    ids = [i * m // n for i in range(n)]
    sizes = [ids.count(s) for s in range(m)]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == n
    start = 0
    for s, size in enumerate(sizes):
        torch.testing.assert_close(means[..., s, :], x[..., start:start + size, :].mean(dim=-2))
        start += size


def test_segment_means_rejects_more_segments_than_tokens():
    with pytest.raises(ValueError):
        segment_means(torch.zeros(1, 3, 2), 4)


def test_iterative_pinv_matches_linalg_pinv_on_softmax_matrices():
    torch.manual_seed(3)
    a = torch.softmax(torch.randn(4, 6, 6, dtype=torch.float64) * 3, dim=-1)
    torch.testing.assert_close(iterative_pinv(a, 40), torch.linalg.pinv(a), rtol=1e-7, atol=1e-7)
    z6 = iterative_pinv(a, 6)
    # six iterations already reproduce A on its range: A Z A ~= A
    assert float((a @ z6 @ a - a).abs().max()) < 0.02


def test_large_bag_costs_linear_memory():
    att = NystromAttention(32, heads=4, landmarks=16).eval()
    with torch.no_grad():
        out = att(torch.randn(1, 5000, 32))
    assert out.shape == (1, 5000, 32) and torch.isfinite(out).all()


@pytest.mark.parametrize("n", [1, 5, 16])
def test_exact_short_is_exact_attention_when_every_token_is_a_landmark(n):
    torch.manual_seed(4)
    att = NystromAttention(32, heads=4, landmarks=16, residual=False, exact_short=True).double().eval()
    x = torch.randn(2, n, 32, dtype=torch.float64)
    torch.testing.assert_close(att(x), exact_attention(att, x), rtol=1e-12, atol=1e-12)


def test_exact_short_changes_nothing_on_sequences_longer_than_the_landmarks():
    torch.manual_seed(5)
    nystrom = NystromAttention(32, heads=4, landmarks=8, residual_kernel=5).double().eval()
    shortcut = NystromAttention(32, heads=4, landmarks=8, residual_kernel=5, exact_short=True).double().eval()
    shortcut.load_state_dict(nystrom.state_dict())
    long, short = torch.randn(1, 30, 32, dtype=torch.float64), torch.randn(1, 6, 32, dtype=torch.float64)
    torch.testing.assert_close(shortcut(long), nystrom(long), rtol=0, atol=0)  # same code path
    # on a short sequence both compute A V; the iterative pinv only approximately
    assert relative_error(shortcut(short), nystrom(short)) < 0.05
