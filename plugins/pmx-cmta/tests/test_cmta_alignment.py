"""The alignment objective: eq. 19's value, and the detach that keeps gradients off p and g."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pmx_cmta import CMTAAlignment, CMTAModel

from cmta_testutils import TINY, random_inputs


def tokens(requires_grad: bool = True) -> SimpleNamespace:
    gen = torch.Generator().manual_seed(0)
    return SimpleNamespace(**{
        name: torch.randn(2, 8, generator=gen, dtype=torch.float64).requires_grad_(requires_grad)
        for name in ("p", "p_hat", "g", "g_hat")
    })


def test_value_is_eq_19_averaged_over_the_batch():
    t = tokens()
    losses = CMTAAlignment()(t)
    d = 8
    per_patient = ((t.p - t.p_hat).abs().sum(-1) + (t.g - t.g_hat).abs().sum(-1)) / d
    torch.testing.assert_close(losses["align"], per_patient.mean())
    torch.testing.assert_close(losses["align_p"], (t.p - t.p_hat).abs().mean())
    assert set(losses) == {"align_p", "align_g", "align"}


def test_detached_alignment_sends_no_gradient_to_the_intra_modal_tokens():
    t = tokens()
    CMTAAlignment(detach=True)(t)["align"].backward()
    assert t.p.grad is None and t.g.grad is None
    assert t.p_hat.grad is not None and t.p_hat.grad.abs().sum() > 0
    assert t.g_hat.grad is not None and t.g_hat.grad.abs().sum() > 0


def test_without_detach_the_intra_modal_tokens_are_pulled_too():
    t = tokens()
    CMTAAlignment(detach=False)(t)["align"].backward()
    torch.testing.assert_close(t.p.grad, -t.p_hat.grad)  # |p - p_hat|: equal and opposite
    assert t.g.grad.abs().sum() > 0


@pytest.mark.parametrize("detach", [True, False])
def test_in_the_model_the_alignment_loss_reaches_p_and_g_only_without_detach(detach):
    torch.manual_seed(0)
    model = CMTAModel.build(backbone=TINY, detach=detach).train()
    model.fit_time_bins(np.arange(1.0, 9.0), np.ones(8, dtype=bool))
    fwd = model(*random_inputs(9))
    out = fwd.outputs
    align = model.losses(fwd, [3.0], [1])["align"]
    grad_p, grad_g, grad_p_hat = torch.autograd.grad(
        align, [out.p, out.g, out.p_hat], allow_unused=True, retain_graph=True
    )
    assert grad_p_hat is not None and grad_p_hat.abs().sum() > 0
    if detach:
        assert grad_p is None and grad_g is None  # p and g are not in the alignment graph
    else:
        assert grad_p.abs().sum() > 0 and grad_g.abs().sum() > 0
    # the encoders' own class tokens still learn from the survival loss
    nll = model.losses(fwd, [3.0], [1])["nll"]
    grad_p_nll, = torch.autograd.grad(nll, [out.p])
    assert grad_p_nll.abs().sum() > 0


def test_alternative_metrics_from_figure_3():
    t = tokens(requires_grad=False)
    mse = CMTAAlignment(metric="mse")(t)["align_p"]
    torch.testing.assert_close(mse, ((t.p - t.p_hat) ** 2).mean())
    cos = CMTAAlignment(metric="cosine")(t)["align_g"]
    torch.testing.assert_close(cos, (1 - torch.nn.functional.cosine_similarity(t.g, t.g_hat, dim=-1)).mean())
