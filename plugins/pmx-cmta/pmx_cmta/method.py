"""The ``cmta`` method recipe: config sections, presets, dry run, and the end-to-end run.

Table 2 ablations are config switches:

    --set model.cross_attention=false   w/o Cross-Modal Attention
    --set loss.alignment=false          w/o Alignment Constraints
    --set loss.detach=false             w/o Tensor Detaching
    --set model.ppeg=false              w/o PPEG module
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pmx
from pmx.recipes import DemoSection

from .backbone import CMTABackbone

#: Parameters of the paper-preset model apart from the first SNN layer's weights, which add
#: 1024 per genomic input feature (see docs/methods/cmta.md for the derivation).
PAPER_BASE_PARAMETERS = 4_785_732
PAPER_PER_GENOMIC_INPUT = 1024


class DataSection(pmx.ComponentConfig):
    tiler: str = pmx.Field("grid", description="registered tiler (CLAM-style non-overlapping grid)")
    tile_size: int = pmx.Field(256, ge=16, description="tile edge in pixels at the target magnification")
    magnification: float = pmx.Field(20.0, gt=0, description="target magnification of the tiles")
    tile_encoder: str = pmx.Field(
        "resnet50-trunc", description="frozen tile encoder whose cached embeddings form the bags (1024-d)"
    )
    selector: str = pmx.Field(
        "gene-families", description="omics selector producing the six gene-family groups (scaler fit per fold)"
    )
    signatures: str = pmx.Field(
        "", description="gene-family signatures table (MCAT signatures.csv); empty = signatures.csv next to the manifest"
    )
    rna_transform: Literal["log1p", "none"] = pmx.Field(
        "log1p", description="per-value RNA transform before selection: log2(1 + counts), or none for normalised values"
    )
    min_tissue: float = pmx.Field(0.25, ge=0.0, le=1.0, description="grid tiler: minimum tissue fraction of a kept tile")
    encoder_weights: str = pmx.Field(
        "", description="resnet50-trunc weights file; empty = $PMX_WEIGHTS_RESNET50_TRUNC / $PMX_WEIGHTS_DIR"
    )
    encoder_input_size: int = pmx.Field(
        256, ge=0, description="side tiles are resized to before resnet50-trunc (0 = as tiled; CLAM: 256)"
    )
    allow_random_encoder: bool = pmx.Field(
        True, description="without a weights file, embed with a random resnet50-trunc (a warning, recorded in lineage.json)"
    )
    tile_scaling: Literal["none", "standard"] = pmx.Field(
        "none", description="standardise tile vectors per feature with the training part's tiles (fit per fold; paper: none)"
    )
    tiling_workers: int = pmx.Field(0, ge=0, description="tiling processes (0 = in this process)")
    embed_workers: int = pmx.Field(-1, ge=-1, description="embedding DataLoader workers (-1 = auto)")
    embed_threads: int = pmx.Field(0, ge=0, description="torch CPU threads while embedding (0 = torch default)")


class LossSection(pmx.ComponentConfig):
    alpha: float = pmx.Field(1.0, ge=0.0, description="weight of the alignment loss (code: 1.0 default, 100 BRCA, 1e-4 LUAD)")
    alignment: bool = pmx.Field(True, description="use the alignment loss (false = Table 2 'w/o Alignment Constraints')")
    detach: bool = pmx.Field(True, description="detach p, g in the alignment loss (false = 'w/o Tensor Detaching')")
    metric: Literal["l1", "mse", "cosine"] = pmx.Field("l1", description="alignment distance (paper: l1)")
    nll_alpha: float = pmx.Field(0.0, ge=0.0, le=1.0, description="extra weight on the uncensored NLL term (MCAT form)")


class SurvivalSection(pmx.ComponentConfig):
    n_bins: int = pmx.Field(4, ge=2, description="discrete time bins: quantiles of the training fold's uncensored times")


class TrainSection(pmx.ComponentConfig):
    optimizer: Literal["sgd", "adam", "adamw"] = pmx.Field("sgd", description="optimizer (paper: SGD)")
    lr: float = pmx.Field(1e-3, gt=0, description="learning rate")
    momentum: float = pmx.Field(0.9, ge=0.0, lt=1.0, description="SGD momentum")
    weight_decay: float = pmx.Field(1e-5, ge=0.0, description="weight decay")
    batch_size: int = pmx.Field(
        1, ge=1, description="patients per optimizer step (paper: 1); equal-size bags of a step share a forward pass"
    )
    group_by_size: bool = pmx.Field(
        False,
        description="form each step from bags of one tile count (after max_train_tiles) across the epoch, so a step is one batched forward (paper: false, batch 1)",
    )
    epochs: int = pmx.Field(30, ge=1, description="passes over the training fold")
    weighted_sampling: bool = pmx.Field(True, description="sample balancing (time bin, censorship) classes")
    schedule: Literal["constant", "cosine"] = pmx.Field(
        "constant", description="learning rate per epoch: constant (paper) or cosine decay towards 0"
    )
    threads: int = pmx.Field(
        0, ge=0, description="torch CPU threads while training (0 = torch default; 1 is fastest for tiny models on busy CPUs)"
    )


class EvalSection(pmx.ComponentConfig):
    folds: int = pmx.Field(5, ge=2, description="cross-validation folds (stratified by event)")
    val_fraction: float = pmx.Field(
        0.15, ge=0.0, lt=1.0, description="share of each training fold held out for model selection (never the test fold)"
    )
    select_from: float = pmx.Field(
        0.0, ge=0.0, lt=1.0,
        description="model selection only considers epochs from this fraction of the run on (0 = every epoch); earlier epochs are not scored",
    )


class CMTAMethod(pmx.Method):
    """CMTA (ICCV 2023): cross-modal translation and alignment of WSI bags and gene-family omics."""

    name: ClassVar[str] = "cmta"
    version: ClassVar[str] = "1"

    class Config(pmx.ComponentConfig):
        demo: DemoSection = pmx.Field(default_factory=DemoSection,
                                      description="--demo cohort (shared with other methods: same folder, store rows, folds)")
        data: DataSection = pmx.Field(default_factory=DataSection, description="tiles, embeddings, omics")
        model: CMTABackbone.Config = pmx.Field(default_factory=CMTABackbone.Config, description="backbone")
        loss: LossSection = pmx.Field(default_factory=LossSection, description="alignment loss and NLL")
        survival: SurvivalSection = pmx.Field(default_factory=SurvivalSection, description="discrete-time head")
        train: TrainSection = pmx.Field(default_factory=TrainSection, description="optimisation schedule")
        eval: EvalSection = pmx.Field(default_factory=EvalSection, description="cross-validation")

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # CPU demo and tests; every choice and its reason: docs/methods/cmta.md ("tiny preset").
        "tiny": {
            "model": {
                "path_hidden": [64, 32], "omic_hidden": [64, 32], "fusion_hidden": [32, 32],
                "heads": 4, "landmarks": 16, "max_train_tiles": 256, "omic_dropout": 0.5,
                "exact_short_attention": True,
            },
            "train": {
                "optimizer": "adam", "lr": 5e-3, "epochs": 15, "schedule": "cosine", "batch_size": 16,
                "group_by_size": True, "threads": 1,
            },
            "data": {
                "embed_workers": 0, "embed_threads": 1, "tile_scaling": "standard",
                "tile_size": 256, "magnification": 20.0, "encoder_input_size": 64,
            },
            "eval": {"folds": 5, "val_fraction": 0.15, "select_from": 0.5},
        },
        "small": {
            "model": {
                "path_hidden": [128, 128], "omic_hidden": [512, 128], "fusion_hidden": [128, 128],
                "heads": 4, "landmarks": 64, "max_train_tiles": 2048,
            },
            "train": {"epochs": 15},
        },
        "paper": {
            "model": {
                "path_input_dim": 1024, "path_hidden": [256, 256], "omic_hidden": [1024, 256],
                "fusion_hidden": [256, 256], "heads": 8, "landmarks": 128, "pinv_iterations": 6,
                "residual_kernel": 33, "ppeg": True, "cross_attention": True, "max_train_tiles": 0,
                "exact_short_attention": False,
            },
            "loss": {"alpha": 1.0, "alignment": True, "detach": True, "metric": "l1"},
            "survival": {"n_bins": 4},
            "train": {
                "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-5,
                "batch_size": 1, "epochs": 30, "weighted_sampling": True, "schedule": "constant",
                "group_by_size": False,
            },
            "eval": {"folds": 5, "val_fraction": 0.15, "select_from": 0.0},
        },
    }

    def build_model(self) -> Any:
        """The trainable model described by this config (``pmx_cmta.model.CMTAModel``)."""
        from .model import CMTAModel

        c = self.config
        return CMTAModel.build(
            backbone=c.model, n_bins=c.survival.n_bins, nll_alpha=c.loss.nll_alpha,
            alignment=c.loss.alignment, detach=c.loss.detach, metric=c.loss.metric, alpha=c.loss.alpha,
        )

    def dry_run(self, context: pmx.RunContext) -> dict[str, Any]:
        """Parameter counts of the model this config builds (on the meta device: no memory, no data)."""
        import torch

        with torch.device("meta"):
            model = self.build_model()
        width = sum(self.config.model.omic_sizes)
        report: dict[str, Any] = {
            "method": self.name,
            "preset": context.preset,
            "parameters": model.num_parameters(),
            "parts": model.parameter_breakdown(),
            "genomic_groups": len(self.config.model.omic_sizes),
            "genomic_input_width": width,
            "paper_formula": f"{PAPER_BASE_PARAMETERS:,} + {PAPER_PER_GENOMIC_INPUT} x {width} = "
            f"{PAPER_BASE_PARAMETERS + PAPER_PER_GENOMIC_INPUT * width:,} (paper preset, 6 groups)",
            "ablations": {
                "cross_attention": self.config.model.cross_attention,
                "alignment": self.config.loss.alignment and self.config.loss.alpha > 0,
                "detach": self.config.loss.detach,
                "ppeg": self.config.model.ppeg,
            },
            "stages": [
                f"tile ({self.config.data.tiler}, {self.config.data.tile_size} px at {self.config.data.magnification:g}x)",
                f"embed ({self.config.data.tile_encoder})",
                f"select ({self.config.data.selector}, per fold)",
                f"train ({self.config.train.optimizer}, {self.config.train.epochs} epochs, {self.config.eval.folds}-fold CV)",
            ],
        }
        return report

    def run(self, context: pmx.RunContext) -> Any:
        """ingest -> grid tiles -> resnet50-trunc bags -> K folds (selection, bins, training and
        epoch selection on each training part) -> results.json in ``context.out_dir/<run id>``."""
        from .pipeline import run_cmta

        return run_cmta(self, context)
