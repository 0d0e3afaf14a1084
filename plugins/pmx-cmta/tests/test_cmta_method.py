"""The ``cmta`` recipe: registration, presets, ablation switches, the dry-run parameter count."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import pmx
import pmx_cmta
from pmx_cmta import CMTAMethod
from pmx_cmta.method import PAPER_BASE_PARAMETERS, PAPER_PER_GENOMIC_INPUT

MCAT_BLCA_LIKE = [94, 334, 521, 468, 1496, 479]  # an uneven split of 3,392 inputs over 6 families


@pytest.fixture
def host():
    pmx.reset_host()
    h = pmx.get_host()
    if ("method", "cmta") not in h.registry:  # not pip-installed: register in memory
        h.register(pmx_cmta, "cmta")
    yield h
    pmx.reset_host()


def test_components_are_registered_with_their_kinds(host):
    reg = host.registry
    assert reg.get("encoder", "cmta-backbone") is pmx_cmta.CMTABackbone
    assert reg.get("objective", "cmta-alignment") is pmx_cmta.CMTAAlignment
    assert reg.get("method", "cmta") is CMTAMethod
    info = next(i for i in host.plugins.values() if ("method", "cmta") in i.components)
    assert info.errors == []


def dry_run(preset: str, sets: tuple[str, ...] = ()) -> dict:
    config = CMTAMethod.resolve_config(preset, sets=sets)
    return CMTAMethod(config).dry_run(pmx.RunContext(method="cmta", preset=preset))


@pytest.mark.parametrize("sizes", [[100, 200, 300, 400, 500, 600], MCAT_BLCA_LIKE, [1, 1, 1, 1, 1, 1]])
def test_paper_parameter_count_is_4785732_plus_1024_per_genomic_input(sizes):
    report = dry_run("paper", (f"model.omic_sizes={sizes}",))
    width = sum(sizes)
    assert report["genomic_input_width"] == width
    assert report["parameters"] == 4_785_732 + 1024 * width
    assert report["parameters"] == PAPER_BASE_PARAMETERS + PAPER_PER_GENOMIC_INPUT * width
    assert sum(report["parts"].values()) == report["parameters"]


def test_paper_breakdown_matches_the_derivation_in_the_docs():
    parts = dry_run("paper")["parts"]
    assert parts == {
        "pathology_fc": 328_192,  # 1024*256+256 + 256*256+256
        "genomics_snn": 1_580_544 + 1024 * 2100,  # 6 * (1024+1024*256+256) + 1024 * width
        "pathology_encoder": 549_136,  # cls 256 + 2 * 263,176 + PPEG 22,016 + LN 512
        "genomics_encoder": 527_120,  # cls 256 + 2 * 263,176 + LN 512
        "cross_attention": 526_336,  # 2 * (4 * 256^2 + 4 * 256)
        "pathology_decoder": 549_136,
        "genomics_decoder": 527_120,
        "fusion_mlp": 197_120,  # 512*256+256 + 256*256+256
        "survival_head": 1_028,  # 256*4+4
    }


def test_ablation_switches_resolve_from_set_options():
    config = CMTAMethod.resolve_config(
        "paper",
        sets=("model.cross_attention=false", "loss.alignment=false", "loss.detach=false", "model.ppeg=false"),
    )
    assert not config.model.cross_attention and not config.model.ppeg
    assert not config.loss.alignment and not config.loss.detach
    report = CMTAMethod(config).dry_run(pmx.RunContext(method="cmta", preset="paper"))
    assert report["ablations"] == {"cross_attention": False, "alignment": False, "detach": False, "ppeg": False}
    assert report["parameters"] == 4_785_732 + 1024 * 2100 - 526_336 - 2 * 22_016
    model = CMTAMethod(config).build_model()
    assert model.alignment is None


@pytest.mark.parametrize("switch", ["model.cross_attention", "loss.alignment", "loss.detach", "model.ppeg"])
def test_each_table_2_switch_removes_exactly_its_component(switch):
    from pmx_cmta.layers import CrossAttention
    from pmx_cmta.ppeg import PPEG

    def built(sets):
        return CMTAMethod(CMTAMethod.resolve_config("tiny", sets=sets)).build_model()

    def parts(model):
        return {
            "model.cross_attention": any(isinstance(m, CrossAttention) for m in model.modules()),
            "model.ppeg": any(isinstance(m, PPEG) for m in model.modules()),
            "loss.alignment": model.alignment is not None,
            # without the alignment loss nothing can pull p and g: as good as detached
            "loss.detach": model.alignment is None or model.alignment.config.detach,
        }

    full, ablated = parts(built(())), parts(built((f"{switch}=false",)))
    assert all(full.values())
    assert {k for k in full if full[k] != ablated[k]} == {switch}


def test_paper_preset_holds_the_published_schedule():
    c = CMTAMethod.resolve_config("paper")
    assert (c.train.optimizer, c.train.lr, c.train.momentum, c.train.weight_decay) == ("sgd", 1e-3, 0.9, 1e-5)
    assert (c.train.batch_size, c.train.epochs, c.train.weighted_sampling) == (1, 30, True)
    # none of the tiny preset's CPU shortcuts: constant lr, batch-1 steps, every epoch selectable,
    # the 6-iteration Nystrom pseudo-inverse on every sequence
    assert (c.train.schedule, c.train.group_by_size, c.eval.select_from) == ("constant", False, 0.0)
    assert not c.model.exact_short_attention and c.model.omic_dropout == 0.25
    assert (c.loss.alpha, c.survival.n_bins, c.model.landmarks, c.model.heads) == (1.0, 4, 128, 8)
    assert (c.data.tiler, c.data.tile_encoder, c.data.selector) == ("grid", "resnet50-trunc", "gene-families")


def test_tiny_uses_the_folds_every_method_shares_on_the_demo():
    """5 folds with a 15% validation split, as ContraMAE's tiny preset: one split in the store."""
    c = CMTAMethod.resolve_config("tiny")
    assert (c.eval.folds, c.eval.val_fraction) == (5, 0.15)
    try:
        from pmx_contramae import ContraMAEMethod
    except ImportError:
        return
    other = ContraMAEMethod.resolve_config("tiny")
    assert (other.eval.folds, other.eval.val_fraction) == (c.eval.folds, c.eval.val_fraction)
    assert other.demo == c.demo


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_every_preset_builds_a_model(preset):
    report = dry_run(preset)
    assert report["parameters"] > 0
    if preset != "paper":
        assert report["parameters"] < dry_run("paper")["parameters"]


def test_bad_override_names_the_key():
    with pytest.raises(pmx.ConfigError, match="landmark"):
        CMTAMethod.resolve_config("paper", sets=("model.landmark=64",))


def test_cli_dry_run_prints_the_count(host):
    from pmx.cli.main import cli

    result = CliRunner().invoke(
        cli, ["run", "plugin:cmta", "--preset", "paper", "--dry-run", "--json",
              "--set", f"model.omic_sizes={MCAT_BLCA_LIKE}"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["parameters"] == 4_785_732 + 1024 * sum(MCAT_BLCA_LIKE)


def test_run_without_data_asks_for_a_cohort(tmp_path):
    method = CMTAMethod(CMTAMethod.resolve_config("tiny"))
    with pytest.raises(pmx.PmxError, match="--cohort DIR"):
        method.run(pmx.RunContext(method="cmta", preset="tiny", store=str(tmp_path / "s"), out_dir=tmp_path))
