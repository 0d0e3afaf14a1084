"""The ``contramae`` recipe: registration, presets, config checks, ablations, parameter counts."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import pmx
import pmx_contramae
from pmx_contramae import ContraMAEMethod


@pytest.fixture
def host():
    pmx.reset_host()
    h = pmx.get_host()
    if ("method", "contramae") not in h.registry:  # not pip-installed: register in memory
        h.register(pmx_contramae, "contramae")
    yield h
    pmx.reset_host()


def resolve(preset: str = "tiny", *sets: str):
    return ContraMAEMethod.resolve_config(preset, sets=sets)


def dry_run(preset: str = "paper", *sets: str) -> dict:
    return ContraMAEMethod(resolve(preset, *sets)).dry_run(pmx.RunContext(method="contramae", preset=preset))


def test_components_are_registered_with_their_kinds(host):
    reg = host.registry
    assert reg.get("encoder", "contramae-vit") is pmx_contramae.ContraMAEBackbone
    assert reg.get("objective", "contramae-pgc") is pmx_contramae.PathologyGenomicsContrast
    assert reg.get("objective", "contramae-gr") is pmx_contramae.GenomicsReconstruction
    assert reg.get("objective", "contramae-pr") is pmx_contramae.PathologyReconstruction
    assert reg.get("head", "concat-cox") is pmx_contramae.ConcatCoxHead
    assert reg.get("method", "contramae") is ContraMAEMethod
    info = next(i for i in host.plugins.values() if ("method", "contramae") in i.components)
    assert info.errors == []


def test_method_names_the_representative_region_tiler_and_deseq2_rsf_selector(host):
    cfg = resolve("paper")
    assert (cfg.data.tiler, cfg.data.selector) == ("representative-region", "deseq2-rsf")
    host.registry.get("tiler", cfg.data.tiler)
    host.registry.get("selector", cfg.data.selector)
    assert (cfg.data.region_size, cfg.data.magnification, cfg.data.stride, cfg.data.top_k) == (1024, 5.0, 100, 300)


def test_paper_preset_has_the_published_hyperparameters():
    c = resolve("paper")
    m = c.model
    assert (m.image_size, m.patch_size, m.embed_dim, m.depth, m.num_heads) == (1024, 128, 768, 12, 12)
    assert (m.decoder_dim, m.decoder_depth, m.decoder_heads, m.omics_dim) == (512, 8, 16, 300)
    assert (c.objectives.mask_ratio, c.objectives.omics_masked) == (0.75, 1)
    p = c.pretrain
    assert (p.batch_size, p.epochs, p.lr, tuple(p.betas), p.warmup_epochs, p.optimizer) == (
        100, 2000, 5e-3, (0.9, 0.95), 200.0, "adamw")
    f = c.finetune
    assert (f.lr, f.layer_decay, f.weight_decay, f.drop_path, f.warmup_epochs, f.batch_size, f.epochs) == (
        8e-4, 0.75, 0.05, 0.1, 10.0, 50, 80)
    assert (f.patience, f.monitor, f.schedule) == (12, "val_c_index", "cosine")
    assert (c.augment.scale_min, c.augment.scale_max) == (0.2, 1.0)
    assert c.model_dump() == ContraMAEMethod.Config().model_dump()  # defaults are the paper


def test_paper_parameter_counts_about_174m_and_123m():
    report = dry_run("paper")
    pre, ft = report["pretrain"], report["finetune"]
    # derivation in docs/methods/contramae.md
    assert pre["parts"] == {"encoder": 123_039_744, "decoder": 25_615_872, "objective_pgc": 1,
                            "objective_gr": 153_900, "objective_pr": 25_214_976}
    assert pre["parameters"] == 174_024_493
    assert ft["parameters"] == 123_041_281
    assert round(pre["parameters"] / 1e6) == 174 and round(ft["parameters"] / 1e6) == 123
    assert (pre["encoder_tokens"], pre["decoder_tokens"], ft["encoder_tokens"]) == (1 + 2 + 16, 68, 68)


def test_tiny_preset_builds_real_models_that_run(host):
    method = ContraMAEMethod(resolve("tiny"))
    pre = method.build_pretrain_model()
    ft = method.build_survival_model()
    batch = {"image": torch.randint(0, 256, (4, 3, 256, 256), dtype=torch.uint8),
             "omics": torch.randn(4, 3, 32), "time": torch.tensor([5.0, 3.0, 8.0, 1.0]),
             "event": torch.tensor([1, 0, 1, 1])}
    losses = pre.losses(batch)
    assert set(losses) == {"pgc", "gr", "pr"} and all(torch.isfinite(v) for v in losses.values())
    ft.eval()
    assert ft.predict(batch)["risk"].shape == (4,)
    assert dry_run("tiny")["pretrain"]["parameters"] < 1_000_000


@pytest.mark.parametrize(
    "sets, objectives",
    [
        ((), ["pgc", "gr", "pr"]),
        (("objectives.gr=false", "objectives.pr=false"), ["pgc"]),
        (("objectives.pgc=false",), ["gr", "pr"]),
        (("modalities='omics'",), ["gr"]),
        (("modalities='pathology'",), ["pr"]),
    ],
)
def test_ablation_switches(sets, objectives):
    report = dry_run("tiny", *sets)
    assert report["pretrain"]["objectives"] == objectives


def test_from_scratch_skips_pretraining():
    report = dry_run("paper", "pretrain.epochs=0")
    assert "skipped" in report["pretrain"]
    assert report["finetune"]["parameters"] == 123_041_281


def test_unimodal_finetuning_sizes():
    assert dry_run("paper", "modalities='omics'")["finetune"]["parts"]["head"] == 768 * 2 + 768 + 1
    assert dry_run("paper", "modalities='pathology'")["finetune"]["encoder_tokens"] == 1 + 64


@pytest.mark.parametrize(
    "sets, message",
    [
        (("data.top_k=100",), "must equal data.top_k"),
        (("model.drop_path=0.1",), "finetune.drop_path"),
        (("objectives.pgc=false", "objectives.gr=false", "objectives.pr=false"), "every pretext objective is off"),
        (("model.bogus=1",), "unknown key 'model.bogus'"),
    ],
)
def test_bad_configs_are_refused_with_the_fix(sets, message):
    with pytest.raises(pmx.ConfigError, match=message):
        ContraMAEMethod(resolve("tiny", *sets))


def test_tiny_preset_shares_the_demo_cohort_and_folds_and_its_region_is_tissue_not_padding():
    from pmx.recipes import DemoSection

    c = resolve("tiny")
    assert c.demo == DemoSection()  # same demo folder, ingested rows and folds as every method
    assert (c.eval.folds, c.eval.val_fraction) == (5, 0.15)
    extent = c.data.region_size * 20 / c.data.magnification  # level-0 px (the demo slides are 20x)
    assert extent <= 0.75 * c.demo.slide_size  # fits inside a demo slide (height = 3/4 width)
    assert c.model.image_size // c.model.patch_size == 8  # the paper's 8 x 8 image tokens
    assert c.runtime.threads == 1


def test_cli_dry_run_prints_the_counts(host):
    from pmx.cli.main import cli

    result = CliRunner().invoke(cli, ["run", "plugin:contramae", "--preset", "paper", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["pretrain"]["parameters"] == 174_024_493
    assert report["finetune"]["parameters"] == 123_041_281
