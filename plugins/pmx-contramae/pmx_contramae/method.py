"""The ``contramae`` method recipe: config sections, presets, dry run, and the end-to-end run.

Ablations of the paper as config switches:

    --set pretrain.epochs=0                       Table IV "from scratch"
    --set objectives.gr=false --set objectives.pr=false      Table IV "contrastive learning" only
    --set objectives.pgc=false                    Table IV "two reconstructions"
    --set modalities=omics | modalities=pathology Table III unimodal
    --set head.bound=sigmoid                      the authors' code's sigmoid-wrapped risk
"""

from __future__ import annotations

from typing import Any, ClassVar

import pmx
from pmx.recipes import DemoSection

from .backbone import BackboneConfig
from .config import (
    AugmentSection,
    DataSection,
    EvalSection,
    FinetuneConfig,
    HeadSection,
    Modalities,
    ObjectivesSection,
    PretrainConfig,
    RuntimeSection,
)

__all__ = ["ContraMAEMethod", "PAPER_PRETRAIN_PARAMETERS", "PAPER_FINETUNE_PARAMETERS"]

#: the issue's reference sizes at the paper preset ("about 174M" / "about 123M")
PAPER_PRETRAIN_PARAMETERS = 174_000_000
PAPER_FINETUNE_PARAMETERS = 123_000_000


class ContraMAEConfig(pmx.ComponentConfig):
    demo: DemoSection = pmx.Field(default_factory=DemoSection,
                                  description="--demo cohort (shared with other methods: same folder, store rows, folds)")
    modalities: Modalities = pmx.Field(
        "both", description="both (paper), omics or pathology (Table III unimodal ablations)")
    data: DataSection = pmx.Field(default_factory=DataSection, description="region tiling and omics selection")
    model: BackboneConfig = pmx.Field(default_factory=BackboneConfig, description="cross-modal ViT encoder and decoder")
    objectives: ObjectivesSection = pmx.Field(default_factory=ObjectivesSection, description="pretext objectives and masking")
    head: HeadSection = pmx.Field(default_factory=HeadSection, description="concat-Cox survival head")
    augment: AugmentSection = pmx.Field(default_factory=AugmentSection, description="on-the-fly region augmentation")
    pretrain: PretrainConfig = pmx.Field(default_factory=PretrainConfig, description="self-supervised pretraining")
    finetune: FinetuneConfig = pmx.Field(default_factory=FinetuneConfig, description="survival fine-tuning")
    eval: EvalSection = pmx.Field(default_factory=EvalSection, description="cross-validation")
    runtime: RuntimeSection = pmx.Field(default_factory=RuntimeSection, description="CPU threads, kept checkpoints")


def check_consistency(c: ContraMAEConfig) -> None:
    """Cross-section rules a single field cannot express; raises ConfigError naming the fix."""
    problems = []
    if c.model.omics_dim != c.data.top_k:
        problems.append(f"model.omics_dim ({c.model.omics_dim}) must equal data.top_k ({c.data.top_k}): "
                        "each omics token is one selected top-k vector; set both")
    if c.model.n_omics != len(c.data.omics_types):
        problems.append(f"model.n_omics ({c.model.n_omics}) must equal the number of data.omics_types "
                        f"({len(c.data.omics_types)})")
    if c.model.drop_path != 0.0:
        problems.append("set stochastic depth per stage with pretrain.drop_path / finetune.drop_path, "
                        "not model.drop_path")
    if c.modalities == "both" and c.pretrain.epochs > 0 and not (c.objectives.pgc or c.objectives.gr or c.objectives.pr):
        problems.append("every pretext objective is off; enable one or set pretrain.epochs=0")
    if problems:
        raise pmx.ConfigError("invalid config for method 'contramae': " + "; ".join(problems))


class ContraMAEMethod(pmx.Method):
    """ContraMAE: contrastive alignment masked autoencoder over a WSI region and three omics vectors."""

    name: ClassVar[str] = "contramae"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[ContraMAEConfig]] = ContraMAEConfig
    distributed: ClassVar[bool] = True  # --gpus N: DDP pretraining and fine-tuning (pipeline.py)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # CPU demo (docs/methods/contramae.md, "The tiny preset"): the paper's geometry scaled by
        # 1/8. The demo slides are 1024 x 768 px at 20x (256 x 192 at 5x), so the paper's 1024 px
        # region at 5x would be almost all white padding; a 128 px region at 5x covers 512 level-0
        # px, about 90% tissue, and 16 px patches keep the paper's 8 x 8 = 64 image tokens.
        "tiny": {
            "data": {"region_size": 128, "magnification": 5.0, "stride": 12, "top_k": 32},
            "model": {
                "image_size": 128, "patch_size": 16, "omics_dim": 32, "embed_dim": 64, "depth": 2,
                "num_heads": 4, "decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4,
            },
            "pretrain": {"epochs": 10, "batch_size": 16, "lr": 1e-3, "warmup_epochs": 1.0,
                         "checkpoint_every_epochs": 1000},
            "finetune": {
                "epochs": 15, "batch_size": 16, "lr": 1e-3, "warmup_epochs": 1.0, "patience": 5,
                "drop_path": 0.0, "checkpoint_every_epochs": 1000,
            },
            "runtime": {"threads": 1},
        },
        "small": {
            "data": {"region_size": 512, "top_k": 100},
            "model": {
                "image_size": 512, "patch_size": 64, "omics_dim": 100, "embed_dim": 192, "depth": 6,
                "num_heads": 6, "decoder_dim": 128, "decoder_depth": 2, "decoder_heads": 4,
            },
            "pretrain": {"epochs": 200, "batch_size": 32, "lr": 1.5e-3, "warmup_epochs": 20.0},
            "finetune": {"epochs": 40, "batch_size": 32, "warmup_epochs": 5.0, "patience": 8},
        },
        # Published hyperparameters (paper section II-D; code where the paper is silent).
        "paper": {
            "modalities": "both",
            "data": {
                "tiler": "representative-region", "region_size": 1024, "magnification": 5.0, "stride": 100,
                "selector": "deseq2-rsf", "omics_types": ["rna", "mirna", "methylation"], "top_k": 300,
            },
            "model": {
                "image_size": 1024, "patch_size": 128, "in_chans": 3, "omics_dim": 300, "n_omics": 3,
                "embed_dim": 768, "depth": 12, "num_heads": 12, "mlp_ratio": 4.0, "qkv_bias": True,
                "decoder_dim": 512, "decoder_depth": 8, "decoder_heads": 16,
            },
            "objectives": {
                "pgc": True, "gr": True, "pr": True, "pgc_weight": 1.0, "gr_weight": 1.0, "pr_weight": 1.0,
                "mask_ratio": 0.75, "omics_masked": 1, "init_temperature": 0.07, "max_logit_scale": 100.0,
                "norm_pix": False,
            },
            "head": {"ties": "breslow", "bound": "none"},
            "augment": {"scale_min": 0.2, "scale_max": 1.0, "flip": 0.5},
            "pretrain": {
                "epochs": 2000, "batch_size": 100, "optimizer": "adamw", "lr": 5e-3, "betas": [0.9, 0.95],
                "weight_decay": 0.05, "warmup_epochs": 200.0, "schedule": "cosine", "min_lr": 0.0,
                "drop_path": 0.0,
            },
            "finetune": {
                "epochs": 80, "batch_size": 50, "optimizer": "adamw", "lr": 8e-4, "layer_decay": 0.75,
                "weight_decay": 0.05, "drop_path": 0.1, "warmup_epochs": 10.0, "schedule": "cosine",
                "min_lr": 1e-6, "patience": 12, "monitor": "val_c_index",
            },
            "eval": {"folds": 5},
        },
    }

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        check_consistency(self.config)

    # ---- models ---------------------------------------------------------------------------
    def build_pretrain_model(self, with_augment: bool = True) -> Any:
        """The pretraining model (``pmx_contramae.model.ContraMAEPretrainModel``) of this config."""
        from .model import ContraMAEPretrainModel

        c = self.config
        return ContraMAEPretrainModel.build(
            c.model, c.objectives, modalities=c.modalities, augment=c.augment,
            drop_path=c.pretrain.drop_path, with_augment=with_augment)

    def build_survival_model(self, with_augment: bool = True) -> Any:
        """The fine-tuning model (``pmx_contramae.model.ContraMAESurvivalModel``) of this config."""
        from .model import ContraMAESurvivalModel

        c = self.config
        return ContraMAESurvivalModel.build(
            c.model, c.head, modalities=c.modalities, augment=c.augment,
            drop_path=c.finetune.drop_path, with_augment=with_augment)

    def dry_run(self, context: pmx.RunContext) -> dict[str, Any]:
        """Parameter counts of both models (built on the meta device: no memory, no data)."""
        import torch

        c = self.config
        grid = c.model.image_size // c.model.patch_size
        n_patches = grid * grid
        visible = int(n_patches * (1 - c.objectives.mask_ratio))
        report: dict[str, Any] = {"method": self.name, "preset": context.preset, "modalities": c.modalities}
        with torch.device("meta"):
            survival = self.build_survival_model(with_augment=False)
            pretrain = self.build_pretrain_model(with_augment=False) if c.pretrain.epochs > 0 else None
        if pretrain is not None:
            objectives = [n for n in ("pgc", "gr", "pr") if getattr(pretrain, n) is not None]
            report["pretrain"] = {
                "parameters": sum(pretrain.parameter_breakdown().values()),
                "parts": pretrain.parameter_breakdown(),
                "objectives": objectives,
                "encoder_tokens": 1 + (c.model.n_omics - c.objectives.omics_masked if c.modalities != "pathology" else 0)
                + (visible if c.modalities != "omics" else 0),
                "decoder_tokens": 1 + (c.model.n_omics if c.modalities != "pathology" else 0)
                + (n_patches if c.modalities != "omics" else 0),
            }
        else:
            report["pretrain"] = "skipped (pretrain.epochs=0: fine-tuning from scratch)"
        report["finetune"] = {
            "parameters": sum(survival.parameter_breakdown().values()),
            "parts": survival.parameter_breakdown(),
            "encoder_tokens": 1 + (c.model.n_omics if c.modalities != "pathology" else 0)
            + (n_patches if c.modalities != "omics" else 0),
        }
        report["paper_reference"] = "paper preset: about 174M parameters pretraining, about 123M fine-tuning"
        report["stages"] = [
            f"tile ({c.data.tiler}: one {c.data.region_size} px region at {c.data.magnification:g}x, stride {c.data.stride})",
            f"select ({c.data.selector}: top {c.data.top_k} of {', '.join(c.data.omics_types)}, per fold)",
            f"pretrain ({c.pretrain.epochs} epochs, batch {c.pretrain.batch_size}, lr {c.pretrain.lr:g})",
            f"fine-tune ({c.finetune.epochs} epochs max, batch {c.finetune.batch_size}, lr {c.finetune.lr:g}, "
            f"early stop on {c.finetune.monitor} of the validation split, {c.eval.folds}-fold CV)",
        ]
        return report

    def run(self, context: pmx.RunContext) -> Any:
        """ingest -> representative regions (store) -> shared folds -> per fold: deseq2-rsf on the
        training part, pretraining, fine-tuning with early stopping on the validation split, test
        risks -> results.json in ``context.out_dir/<run id>`` (see pmx_contramae.pipeline)."""
        from .pipeline import run_contramae

        return run_contramae(self, context)
