"""Small models and random batches shared by the ContraMAE tests."""

from __future__ import annotations

import torch

from pmx_contramae import BackboneConfig

#: 64 image tokens (32 px region, 4 px patches) like the paper's 8 x 8 grid, tiny widths
TINY = dict(
    image_size=32, patch_size=4, omics_dim=10, embed_dim=16, depth=2, num_heads=2,
    decoder_dim=8, decoder_depth=1, decoder_heads=2,
)


def tiny_config(**overrides) -> BackboneConfig:
    return BackboneConfig(**{**TINY, **overrides})


def random_batch(batch: int = 6, seed: int = 0, size: int = 32, omics_dim: int = 10, survival: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {
        "image": torch.randn(batch, 3, size, size, generator=g),
        "omics": torch.randn(batch, 3, omics_dim, generator=g),
    }
    if survival:
        out["time"] = torch.rand(batch, generator=g) * 100 + 1
        out["event"] = (torch.arange(batch) % 2 == 0).long()
    return out


# ---- end-to-end runs on a small cohort ------------------------------------------------------

def _small_cohort_settings():
    from pmx.cohorts import DemoSettings

    # 5% of modalities missing (and some 512 px slides too small for tissue detection): the run
    # must drop those patients with a warning
    return DemoSettings(patients=40, seed=2, slide_size=512, missing=0.05, genes=100, mirnas=100, cpgs=100,
                        workers=1)


SMALL_COHORT = _small_cohort_settings()

#: the tiny preset shrunk for the tests: 64 px regions at 10x on 512 px slides (128 level-0 px),
#: 32 px model input with 4 px patches (still 64 image tokens), top 8 features, 3 folds, one
#: pretraining and one fine-tuning epoch, a 20-tree forest
FAST_SETS = [
    "data.region_size=64", "data.magnification=10", "data.stride=8", "data.top_k=8",
    "data.selector_options.n_estimators=20",
    "model.image_size=32", "model.patch_size=4", "model.omics_dim=8", "model.embed_dim=16",
    "model.num_heads=2", "model.decoder_dim=8", "model.decoder_heads=2",
    "pretrain.epochs=1", "pretrain.batch_size=8", "finetune.epochs=1", "finetune.batch_size=8",
    "pretrain.progress=false", "finetune.progress=false",
    "eval.folds=3", "eval.val_fraction=0.2",
]


def run_small(tmp_path, manifest, *sets, store=None, out=None):
    """``pmx run plugin:contramae --cohort ... --preset tiny --set FAST_SETS --set sets``; returns
    (results, run directory, lineage)."""
    import json

    import pmx
    from pmx_contramae import ContraMAEMethod
    from pmx_contramae.pipeline import run_contramae

    config = ContraMAEMethod.resolve_config("tiny", sets=[*FAST_SETS, *sets])
    out = out or tmp_path / "runs"
    context = pmx.RunContext(method="contramae", preset="tiny", store=str(store or tmp_path / "store"),
                             out_dir=out, cohort=manifest, seed=0, device="cpu")
    before = set(out.glob("contramae-tiny-*")) if out.exists() else set()
    results = run_contramae(ContraMAEMethod(config), context, progress=False)
    (run_dir,) = set(out.glob("contramae-tiny-*")) - before
    return results, run_dir, json.loads((run_dir / "lineage.json").read_text())
