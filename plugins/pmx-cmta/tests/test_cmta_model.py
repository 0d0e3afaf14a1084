"""CMTA model: shapes, gradients, bag subsampling, input errors and the Table 2 ablation graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pmx
from pmx_cmta import CMTABackbone, CMTAModel

from cmta_testutils import TINY, random_inputs


def build(**overrides) -> CMTAModel:
    torch.manual_seed(0)
    loss_keys = {"alignment", "detach", "alpha", "metric"}
    backbone = {**TINY, **{k: v for k, v in overrides.items() if k not in loss_keys}}
    model = CMTAModel.build(backbone=backbone, n_bins=4, **{k: v for k, v in overrides.items() if k in loss_keys})
    model.fit_time_bins(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]), np.ones(8, dtype=bool))
    return model


@pytest.mark.parametrize("n_tiles", [1, 2, 5, 16, 37])
def test_forward_backward_for_bags_of_any_size(n_tiles):
    model = build().train()
    path, omics = random_inputs(n_tiles)
    fwd = model(path, omics)
    out = fwd.outputs
    for name in ("p", "p_hat", "g", "g_hat"):
        assert getattr(out, name).shape == (1, 16), name
    assert out.fused.shape == (1, 16)
    assert fwd.logits.shape == (1, 4)
    assert out.attention_path_to_gen.shape == (1, n_tiles, 6)
    assert out.attention_gen_to_path.shape == (1, 6, n_tiles)
    losses = model.losses(fwd, time=[3.5], event=[1])
    assert set(losses) == {"nll", "align_p", "align_g", "align", "total"}
    torch.testing.assert_close(losses["total"], losses["nll"] + 1.0 * losses["align"])
    losses["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


def test_batch_of_equal_bags_and_concatenated_omics():
    model = build().eval()
    path, omics = random_inputs(9, batch=3)
    fwd = model(path, torch.cat(omics, dim=-1))
    assert fwd.logits.shape == (3, 4)
    separate = model(path, omics)
    torch.testing.assert_close(fwd.logits, separate.logits)
    single = model(path[1], [o[1] for o in omics])  # the same patient alone
    torch.testing.assert_close(single.logits[0], fwd.logits[1], rtol=1e-5, atol=1e-5)


def test_risk_is_minus_the_sum_of_the_survival_curve():
    model = build().eval()
    fwd = model(*random_inputs(6))
    survival = torch.cumprod(1 - torch.sigmoid(fwd.logits), dim=1)
    torch.testing.assert_close(model.risk(fwd), -survival.sum(dim=1))


def test_training_subsamples_large_bags_and_evaluation_uses_all_tiles():
    model = build(max_train_tiles=10)
    path, omics = random_inputs(40)
    assert model.train()(path, omics).outputs.tiles_used == 10
    assert model.eval()(path, omics).outputs.tiles_used == 40
    assert model.train()(*random_inputs(7)).outputs.tiles_used == 7  # small bags untouched


def test_eval_is_deterministic():
    model = build().eval()
    path, omics = random_inputs(12)
    torch.testing.assert_close(model(path, omics).logits, model(path, omics).logits)


def test_wrong_inputs_raise_data_errors_that_say_what_to_set():
    model = build().eval()
    path, omics = random_inputs(5)
    with pytest.raises(pmx.DataError, match="path_input_dim"):
        model(torch.randn(5, 47), omics)
    with pytest.raises(pmx.DataError, match="omic_sizes"):
        model(path, omics[:5])
    with pytest.raises(pmx.DataError, match="omic_sizes"):
        model(path, torch.randn(33))
    with pytest.raises(pmx.DataError, match="empty"):
        model(torch.randn(0, 48), omics)


def test_config_rejects_mismatched_token_widths():
    with pytest.raises(pmx.ConfigError, match="path_hidden"):
        CMTABackbone(**{**TINY, "omic_hidden": [24, 12]})
    with pytest.raises(pmx.ConfigError, match="heads"):
        CMTABackbone(**{**TINY, "heads": 3})


# -- Table 2 ablations --------------------------------------------------------------------


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_without_cross_attention_the_bridge_is_gone_and_decoders_read_the_other_modality():
    full, ablated = build(), build(cross_attention=False)
    d = 16
    assert _count(full) - _count(ablated) == 2 * (4 * d * d + 4 * d)
    assert ablated.backbone.path_from_gen is None and ablated.backbone.gen_from_path is None
    ablated.eval()
    path, omics = random_inputs(8)
    out = ablated(path, omics).outputs
    assert out.attention_path_to_gen is None and out.attention_gen_to_path is None
    # p_hat is translated from genomics only, g_hat from pathology only
    other = ablated(path + 1.0, omics).outputs
    torch.testing.assert_close(other.p_hat, out.p_hat)
    assert not torch.allclose(other.g_hat, out.g_hat)
    other = ablated(path, [o + 1.0 for o in omics]).outputs
    torch.testing.assert_close(other.g_hat, out.g_hat)
    assert not torch.allclose(other.p_hat, out.p_hat)


def test_with_cross_attention_each_translation_sees_both_modalities():
    model = build().eval()
    path, omics = random_inputs(8)
    out = model(path, omics).outputs
    assert not torch.allclose(model(path + 1.0, omics).outputs.p_hat, out.p_hat)
    assert not torch.allclose(model(path, [o + 1.0 for o in omics]).outputs.g_hat, out.g_hat)


def test_without_ppeg_no_position_encoder_exists():
    full, ablated = build(), build(ppeg=False)
    d = 16
    assert _count(full) - _count(ablated) == 2 * (d * (49 + 25 + 9) + 3 * d)
    assert full.backbone.path_encoder.ppeg is not None and full.backbone.path_decoder.ppeg is not None
    assert ablated.backbone.path_encoder.ppeg is None and ablated.backbone.path_decoder.ppeg is None
    assert full.backbone.gen_encoder.ppeg is None and full.backbone.gen_decoder.ppeg is None
    fwd = ablated.train()(*random_inputs(10))
    ablated.losses(fwd, [2.0], [0])["total"].backward()


def test_without_alignment_the_loss_is_the_nll_alone():
    model = build(alignment=False).train()
    fwd = model(*random_inputs(6))
    losses = model.losses(fwd, [2.0], [1])
    assert set(losses) == {"nll", "total"}
    torch.testing.assert_close(losses["total"], losses["nll"])
    zero_alpha = build(alpha=0.0)
    assert set(zero_alpha.losses(zero_alpha(*random_inputs(6)), [2.0], [1])) == {"nll", "total"}


def test_alpha_weights_the_alignment_term():
    model = build(alpha=100.0).eval()
    losses = model.losses(model(*random_inputs(6)), [2.0], [1])
    torch.testing.assert_close(losses["total"], losses["nll"] + 100.0 * losses["align"])


def test_without_cross_attention_no_graph_path_links_one_modality_to_the_others_translation():
    path, omics = random_inputs(8)
    path.requires_grad_(True)
    omics = [o.requires_grad_(True) for o in omics]
    probe = torch.randn(16, generator=torch.Generator().manual_seed(1))  # (LayerNorm outputs sum to a constant)
    for cross, linked in ((True, True), (False, False)):
        model = build(cross_attention=cross).eval()
        out = model(path, omics).outputs
        grad_path, = torch.autograd.grad((out.p_hat * probe).sum(), [path], allow_unused=True, retain_graph=True)
        grad_omics = torch.autograd.grad((out.g_hat * probe).sum(), omics, allow_unused=True)
        if linked:  # the bridge: p_hat sees the bag, g_hat sees the omics
            assert grad_path is not None and grad_path.abs().sum() > 0
            assert all(g is not None and g.abs().sum() > 0 for g in grad_omics)
        else:  # p_hat is decoded from the genomics tokens alone, g_hat from the tile tokens alone
            assert grad_path is None and all(g is None for g in grad_omics)
