"""Encoder, decoder, objectives, head and both trainable models at tiny sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from contramae_testutils import random_batch, tiny_config
from torch import nn

from pmx.training import load_pretrained, param_groups
from pmx_contramae import (
    ConcatCoxHead,
    ContraMAEBackbone,
    ContraMAEDecoder,
    ContraMAEPretrainModel,
    ContraMAESurvivalModel,
    EncoderOutput,
    GenomicsReconstruction,
    PathologyGenomicsContrast,
    PathologyReconstruction,
    patchify,
    sample_mask_plan,
)
from pmx_contramae.config import ObjectivesSection
from pmx_contramae.objectives import masked_mse_per_sample
from pmx.survival.losses import cox_loss


def pretrain_model(**objectives) -> ContraMAEPretrainModel:
    torch.manual_seed(0)
    return ContraMAEPretrainModel.build(tiny_config(), ObjectivesSection(**objectives), with_augment=False)


def survival_model(modalities: str = "both") -> ContraMAESurvivalModel:
    torch.manual_seed(0)
    return ContraMAESurvivalModel.build(tiny_config(), modalities=modalities, drop_path=0.0, with_augment=False)


def plan_for(batch: int, seed: int = 0):
    return sample_mask_plan(batch, n_omics=3, n_patches=64, generator=torch.Generator().manual_seed(seed))


# ---- encoder / decoder ---------------------------------------------------------------------
def test_encoder_shapes_with_and_without_masking():
    backbone = ContraMAEBackbone(tiny_config())
    b = random_batch(4)
    full = backbone(b["image"], b["omics"])
    assert full.tokens.shape == (4, 1 + 3 + 64, 16)
    assert (full.n_omics, full.n_image) == (3, 64)
    masked = backbone(b["image"], b["omics"], plan_for(4))
    assert masked.tokens.shape == (4, 1 + 2 + 16, 16)
    assert (masked.n_omics, masked.n_image) == (2, 16)


def test_masked_tokens_never_reach_the_encoder():
    backbone = ContraMAEBackbone(tiny_config()).eval()
    b = random_batch(3)
    plan = plan_for(3)
    before = backbone(b["image"], b["omics"], plan).tokens
    image, omics = b["image"].clone(), b["omics"].clone()
    for i in range(3):
        hidden_patch = int(torch.nonzero(plan.image.mask[i])[0])
        r, c = divmod(hidden_patch, 8)
        image[i, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] += 5.0
        omics[i, int(torch.nonzero(plan.omics.mask[i])[0])] += 5.0
    assert torch.allclose(backbone(image, omics, plan).tokens, before, atol=1e-6)
    visible_patch = int(plan.image.keep[0, 0])
    r, c = divmod(visible_patch, 8)
    image[0, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] += 5.0
    assert not torch.allclose(backbone(image, omics, plan).tokens, before, atol=1e-3)


def test_decoder_reinserts_mask_tokens_in_the_original_order():
    cfg = tiny_config()
    backbone = ContraMAEBackbone(cfg).eval()
    decoder = ContraMAEDecoder(cfg).eval()
    decoder.blocks = nn.ModuleList()  # inspect the decoder's input sequence directly
    decoder.norm = nn.Identity()
    b = random_batch(2)
    plan = plan_for(2)
    enc = backbone(b["image"], b["omics"], plan)
    out = decoder(enc, plan)
    assert out.omics.shape == (2, 3, 8) and out.image.shape == (2, 64, 8)
    embedded = decoder.embed(enc.tokens)
    mask_token = decoder.mask_token[0, 0]
    for i in range(2):
        for j, token in enumerate(plan.image.keep[i].tolist()):
            assert torch.allclose(out.image[i, token], embedded[i, 1 + 2 + j] + decoder.image_pos[0, token], atol=1e-6)
        for token in torch.nonzero(plan.image.mask[i])[:, 0].tolist():
            assert torch.allclose(out.image[i, token], mask_token + decoder.image_pos[0, token], atol=1e-6)
        hidden = int(torch.nonzero(plan.omics.mask[i])[0])
        assert torch.allclose(out.omics[i, hidden], mask_token + decoder.omics_pos[0, hidden], atol=1e-6)
        for j, token in enumerate(plan.omics.keep[i].tolist()):
            assert torch.allclose(out.omics[i, token], embedded[i, 1 + j] + decoder.omics_pos[0, token], atol=1e-6)


def test_pooling_takes_only_omics_tokens_and_only_image_tokens():
    # [cls, o1, o2, p1, p2, p3]: the authors' code pools tokens 1:4 (o1, o2, p1) and 5: (p3).
    tokens = torch.tensor([[[0.0], [1.0], [3.0], [100.0], [200.0], [300.0]]])
    out = EncoderOutput(tokens, n_omics=2, n_image=3)
    assert out.omics_mean().item() == 2.0
    assert out.image_mean().item() == 200.0


# ---- objectives ----------------------------------------------------------------------------
def clip_loss_by_hand(o: np.ndarray, p: np.ndarray, scale: float) -> float:
    o = o / np.linalg.norm(o, axis=1, keepdims=True)
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    sim = scale * p @ o.T
    n = len(o)
    p2g = [-(sim[i, i] - math.log(sum(math.exp(sim[i, j]) for j in range(n)))) for i in range(n)]
    g2p = [-(sim[i, i] - math.log(sum(math.exp(sim[j, i]) for j in range(n)))) for i in range(n)]
    return 0.5 * (sum(p2g) / n + sum(g2p) / n)


def test_pgc_equals_a_hand_computed_clip_loss():
    g = torch.Generator().manual_seed(5)
    o, p = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    pgc = PathologyGenomicsContrast()
    assert pgc.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    expected = clip_loss_by_hand(o.double().numpy(), p.double().numpy(), 1 / 0.07)
    assert pgc(o, p).item() == pytest.approx(expected, rel=1e-5)
    # aligned pairs score lower than shuffled ones
    assert pgc(o, o + 0.01).item() < pgc(o, o[torch.randperm(7, generator=g)]).item()


def test_pgc_and_risk_stay_fp32_under_autocast():
    g = torch.Generator().manual_seed(8)
    o, p = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
    pgc = PathologyGenomicsContrast()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = pgc(o.bfloat16(), p.bfloat16())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(pgc(o.bfloat16().float(), p.bfloat16().float()).item(), rel=1e-6)
    model = survival_model().eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.risk(random_batch(3, survival=True)).dtype == torch.float32


def test_pgc_temperature_is_clamped_at_100():
    g = torch.Generator().manual_seed(6)
    o, p = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    pgc = PathologyGenomicsContrast()
    with torch.no_grad():
        pgc.logit_scale.fill_(math.log(1000.0))
    assert pgc.scale().item() == pytest.approx(100.0)
    loss = pgc(o, p)
    assert loss.item() == pytest.approx(clip_loss_by_hand(o.double().numpy(), p.double().numpy(), 100.0), rel=1e-5)
    loss.backward()
    assert pgc.logit_scale.grad.item() == 0.0  # pinned while clamped
    free = PathologyGenomicsContrast()
    free(o, p).backward()
    assert free.logit_scale.grad.item() != 0.0


def test_reconstruction_losses_ignore_visible_tokens():
    g = torch.Generator().manual_seed(7)
    pred, target = torch.randn(4, 6, 5, generator=g), torch.randn(4, 6, 5, generator=g)
    mask = torch.zeros(4, 6)
    mask[:, 2] = 1.0
    base = masked_mse_per_sample(pred, target, mask)
    assert torch.allclose(base, (pred[:, 2] - target[:, 2]).pow(2).mean(-1))
    changed = target.clone()
    changed[:, [0, 1, 3, 4, 5]] += 10.0
    assert torch.equal(masked_mse_per_sample(pred, changed, mask), base)
    changed[:, 2] += 1.0
    assert not torch.allclose(masked_mse_per_sample(pred, changed, mask), base)


def test_gr_and_pr_of_the_model_depend_only_on_masked_targets():
    model = pretrain_model().eval()
    b = random_batch(3)
    plan = plan_for(3)
    out = model.forward_pretrain(b["image"], b["omics"], plan)
    assert out.pixel_pred.shape == (3, 48, 4 * 4 * 3)  # predicted for the masked patches only
    gr = model.gr.per_sample(out.omics_pred, b["omics"], plan.omics.mask)
    pr = model.pr.per_sample_masked(out.pixel_pred, b["image"], plan.image.masked)
    # the shortcut equals the loss of full predictions restricted to the masked patches
    full = model.pr(out.decoded.image)
    assert torch.allclose(model.pr.per_sample(full, b["image"], plan.image.mask), pr, atol=1e-6)
    manual = (full - patchify(b["image"], 4)).pow(2).mean(-1)
    assert torch.allclose(pr, (manual * plan.image.mask).sum(1) / 48, atol=1e-6)
    omics_t, image_t = b["omics"].clone(), b["image"].clone()
    for i in range(3):
        omics_t[i, plan.omics.keep[i]] = 0.0  # change every visible omics target
        for token in plan.image.keep[i].tolist():
            r, c = divmod(token, 8)
            image_t[i, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = 0.0
    assert torch.equal(model.gr.per_sample(out.omics_pred, omics_t, plan.omics.mask), gr)
    assert torch.equal(model.pr.per_sample_masked(out.pixel_pred, image_t, plan.image.masked), pr)
    assert torch.equal(model.pr.per_sample(full, image_t, plan.image.mask), model.pr.per_sample(full, b["image"], plan.image.mask))
    image_t[0, :, :4, :4] += 1.0  # patch 0 ...
    changed = model.pr.per_sample_masked(out.pixel_pred, image_t, plan.image.masked)
    assert torch.equal(changed[0] != pr[0], torch.tensor(bool(plan.image.mask[0, 0])))  # ... counts iff masked


def test_embedding_only_visible_patches_equals_the_conv_on_all_patches():
    backbone = ContraMAEBackbone(tiny_config())
    b = random_batch(3)
    plan = plan_for(3)
    full = backbone.embed_image(b["image"])
    visible = backbone.embed_image(b["image"], plan.image.keep)
    expected = torch.stack([full[i, plan.image.keep[i]] for i in range(3)])
    assert torch.allclose(visible, expected, atol=1e-5)


def test_pretraining_losses_are_finite_and_reach_every_part():
    model = pretrain_model().train()
    feats = model.features(random_batch(6))
    assert set(feats) == {"omics_repr", "image_repr", "gr", "pr"}
    assert feats["gr"].shape == feats["pr"].shape == (6,)
    losses = model.group_losses(feats)
    assert set(losses) == {"pgc", "gr", "pr"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name in ("backbone.patch_embed.weight", "backbone.omics_embed.weight", "backbone.omics_pos",
                 "backbone.blocks.0.attn.qkv.weight", "decoder.mask_token", "gr.predictor.weight",
                 "pr.predictor.weight", "pgc.logit_scale"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_masks_are_reproducible_from_the_rng_state():
    model = pretrain_model().train()
    batch = random_batch(4)
    state = torch.random.get_rng_state()
    first = model.features(batch)
    torch.random.set_rng_state(state)
    again = model.features(batch)
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_single_objective_and_weights():
    only_pgc = pretrain_model(gr=False, pr=False)
    assert only_pgc.decoder is None and only_pgc.gr is None
    assert set(only_pgc.losses(random_batch(4))) == {"pgc"}
    recon = pretrain_model(pgc=False, gr_weight=2.0)
    assert set(recon.losses(random_batch(4))) == {"gr", "pr"}
    assert recon.loss_weights["gr"] == 2.0
    with pytest.raises(Exception, match="at least one objective"):
        pretrain_model(pgc=False, gr=False, pr=False)


def test_unimodal_pretraining_keeps_only_the_objectives_of_that_modality():
    omics = ContraMAEPretrainModel.build(tiny_config(), modalities="omics", with_augment=False)
    assert omics.pgc is None and omics.pr is None and omics.gr is not None
    assert set(omics.losses({"omics": torch.randn(3, 3, 10)})) == {"gr"}
    path = ContraMAEPretrainModel.build(tiny_config(), modalities="pathology", with_augment=False)
    assert set(path.losses({"image": torch.randn(3, 3, 32, 32)})) == {"pr"}


# ---- fine-tuning ---------------------------------------------------------------------------
def test_finetuning_sees_every_token_without_masking():
    model = survival_model().eval()
    lengths = []
    model.backbone.blocks[0].register_forward_pre_hook(lambda m, args: lengths.append(args[0].shape[1]))
    b = random_batch(4, survival=True)
    r1 = model.risk(b)
    r2 = model.risk(b)
    assert lengths == [1 + 3 + 64] * 2
    assert r1.shape == (4,) and torch.equal(r1, r2)  # nothing random at inference
    model.train()  # no masking in training mode either (drop-path is 0 here)
    assert torch.allclose(model.risk(b), r1, atol=1e-6) and lengths[-1] == 68


def test_risk_is_linear_on_the_normalised_concatenation_of_pooled_encodings():
    model = survival_model().eval()
    b = random_batch(3, survival=True)
    enc = model.backbone(b["image"], b["omics"])
    assert isinstance(model.backbone.norm, nn.Identity)  # code: pooled block outputs, then fc_norm
    head = model.head
    z = torch.cat([head.norm(enc.tokens[:, 1:4].mean(1)), head.norm(enc.tokens[:, 4:].mean(1))], dim=1)
    assert torch.allclose(model.risk(b), head.linear(z).squeeze(-1), atol=1e-6)
    assert head.linear.in_features == 2 * 16


def test_cox_loss_is_pmx_survival_cox_loss_and_sigmoid_variant():
    model = survival_model()
    b = random_batch(6, survival=True)
    feats = model.features(b)
    assert model.group_losses(feats)["cox"].item() == pytest.approx(
        cox_loss(feats["risk"], b["time"], b["event"]).item())
    sig = ContraMAESurvivalModel.build(tiny_config(), with_augment=False)
    sig.head = ConcatCoxHead(in_dim=32, bound="sigmoid")
    risk = sig.risk(b)
    assert torch.all((risk > 0) & (risk < 1))


def test_unimodal_finetuning_models():
    omics = survival_model("omics")
    assert omics.head.config.parts == 1 and omics.head.linear.in_features == 16
    assert omics.risk({"omics": torch.randn(2, 3, 10)}).shape == (2,)
    path = survival_model("pathology")
    assert path.risk({"image": torch.randn(2, 3, 32, 32)}).shape == (2,)


def test_pretrained_backbone_loads_into_the_survival_model():
    pre = pretrain_model()
    ft = survival_model()
    report = load_pretrained(ft, pre.state_dict(), include=["backbone."], required=["backbone."])
    assert "backbone.norm.weight" in report.unused  # the code drops the encoder norm when fine-tuning
    assert all(k.startswith("head.") for k in report.missing)
    assert torch.equal(ft.backbone.patch_embed.weight, pre.backbone.patch_embed.weight)


def test_layer_wise_decay_groups():
    model = survival_model()
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.75,
                          no_weight_decay=model.no_weight_decay(), layer_id=model.layer_id,
                          num_layers=model.num_layers())
    scale_of = {}
    for group in groups:
        for p in group["params"]:
            scale_of[id(p)] = (group["lr_scale"], group["weight_decay"])
    named = dict(model.named_parameters())
    assert scale_of[id(named["backbone.patch_embed.weight"])][0] == pytest.approx(0.75 ** 3)
    assert scale_of[id(named["backbone.blocks.0.mlp.fc1.weight"])][0] == pytest.approx(0.75 ** 2)
    assert scale_of[id(named["backbone.blocks.1.mlp.fc1.weight"])][0] == pytest.approx(0.75)
    assert scale_of[id(named["head.linear.weight"])] == (1.0, 0.05)
    assert scale_of[id(named["backbone.omics_pos"])][1] == 0.0  # position embeddings: no decay
    assert scale_of[id(named["backbone.cls_token"])][1] == 0.0


def test_wrong_input_shapes_name_the_fix():
    from pmx.errors import DataError

    model = survival_model()
    with pytest.raises(DataError, match="top_k"):
        model.risk({"image": torch.randn(2, 3, 32, 32), "omics": torch.randn(2, 3, 11)})
    with pytest.raises(DataError, match="image_size"):
        model.risk({"image": torch.randn(2, 3, 64, 64), "omics": torch.randn(2, 3, 10)})
    with pytest.raises(DataError, match="omics"):
        model.risk({"image": torch.randn(2, 3, 32, 32)})


def test_objective_components_have_the_published_shapes():
    gr = GenomicsReconstruction()
    pr = PathologyReconstruction()
    assert (gr.predictor.in_features, gr.predictor.out_features) == (512, 300)
    assert (pr.predictor.in_features, pr.predictor.out_features) == (512, 128 * 128 * 3)
