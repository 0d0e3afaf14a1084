"""Config sections of the ``contramae`` method (each a typed, documented ``ComponentConfig``).

``pretrain`` and ``finetune`` are pmx's :class:`~pmx.training.TrainConfig` with ContraMAE's
defaults (the ``paper`` preset restates them) plus a ``drop_path`` rate, because stochastic depth
is a property of the stage (the code pretrains without it and fine-tunes with 0.1).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

import pmx
from pmx.training.config import TrainConfig

__all__ = [
    "AugmentSection",
    "DataSection",
    "EvalSection",
    "FinetuneConfig",
    "HeadSection",
    "Modalities",
    "ObjectivesSection",
    "PretrainConfig",
    "RuntimeSection",
]

Modalities = Literal["both", "omics", "pathology"]
OMICS_TYPES = ("rna", "mirna", "methylation")


class DataSection(pmx.ComponentConfig):
    tiler: str = pmx.Field("representative-region", description="registered tiler giving one region per slide")
    region_size: int = pmx.Field(1024, ge=8, description="region edge in pixels at the target magnification")
    magnification: float = pmx.Field(5.0, gt=0, description="target magnification of the region")
    stride: int = pmx.Field(100, ge=1, description="sliding-window step of the region search, pixels")
    tiler_options: dict[str, Any] = pmx.Field(
        default_factory=dict, description="further settings of the tiler (e.g. score, tissue.thumbnail_mpp for small slides)")
    selector: str = pmx.Field("deseq2-rsf", description="omics selector, fit on the training part of each fold")
    omics_types: list[str] = pmx.Field(list(OMICS_TYPES), description="omics tokens, in token order")
    top_k: int = pmx.Field(300, ge=1, description="features kept per omics type (= model.omics_dim)")
    selector_options: dict[str, Any] = pmx.Field(
        default_factory=dict, description="further settings of the selector (e.g. n_estimators); top_k comes from data.top_k")
    pixels: Literal["jpeg", "png"] = pmx.Field("jpeg", description="how the tiler stores region pixels in the store")
    tiling_workers: int = pmx.Field(0, ge=0, description="tiling processes (0 = one per CPU core)")

    @field_validator("omics_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"data.omics_types must be distinct and non-empty, got {value}")
        return value


class ObjectivesSection(pmx.ComponentConfig):
    pgc: bool = pmx.Field(True, description="pathology-genomics contrastive objective")
    gr: bool = pmx.Field(True, description="genomics reconstruction objective")
    pr: bool = pmx.Field(True, description="pathology reconstruction objective")
    pgc_weight: float = pmx.Field(1.0, ge=0, description="weight of PGC in the total loss")
    gr_weight: float = pmx.Field(1.0, ge=0, description="weight of GR in the total loss")
    pr_weight: float = pmx.Field(1.0, ge=0, description="weight of PR in the total loss")
    mask_ratio: float = pmx.Field(0.75, ge=0.0, lt=1.0, description="share of image patches masked per sample")
    omics_masked: int = pmx.Field(1, ge=0, description="omics tokens masked per sample (exactly one in the paper)")
    init_temperature: float = pmx.Field(0.07, gt=0, description="initial PGC temperature (logit scale ln(1/T))")
    max_logit_scale: float = pmx.Field(100.0, gt=0, description="clamp of the PGC logit scale (CLIP)")
    norm_pix: bool = pmx.Field(False, description="per-patch normalised pixel targets for PR (off in the paper's code)")


class HeadSection(pmx.ComponentConfig):
    ties: Literal["breslow", "efron"] = pmx.Field("breslow", description="tie handling of the Cox partial likelihood")
    bound: Literal["none", "sigmoid"] = pmx.Field("none", description="'sigmoid' wraps the risk like the authors' code; paper: none")
    dropout: float = pmx.Field(0.0, ge=0.0, lt=1.0, description="dropout before the linear layer")


class AugmentSection(pmx.ComponentConfig):
    scale_min: float = pmx.Field(0.2, gt=0, le=1, description="RandomResizedCrop: smallest crop area fraction")
    scale_max: float = pmx.Field(1.0, gt=0, le=1, description="RandomResizedCrop: largest crop area fraction")
    ratio_min: float = pmx.Field(3 / 4, gt=0, description="RandomResizedCrop: smallest aspect ratio")
    ratio_max: float = pmx.Field(4 / 3, gt=0, description="RandomResizedCrop: largest aspect ratio")
    flip: float = pmx.Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    finetune: bool = pmx.Field(True, description="augment the training split during fine-tuning too (validation/test never)")


class PretrainConfig(TrainConfig):
    epochs: int = pmx.Field(2000, ge=0, description="pretraining epochs (0 = no pretraining: fine-tune from scratch)")
    batch_size: int = pmx.Field(100, ge=1, description="samples per micro-batch")
    lr: float = pmx.Field(5e-3, gt=0, description="peak learning rate (paper 5e-3; code 1e-3 x batch / 256)")
    weight_decay: float = pmx.Field(0.05, ge=0, description="AdamW weight decay")
    betas: tuple[float, float] = pmx.Field((0.9, 0.95), description="AdamW betas")
    warmup_epochs: float = pmx.Field(200.0, ge=0, description="linear warm-up epochs, then half-cycle cosine")
    restore_best: bool = pmx.Field(False, description="keep the last pretraining weights (no model selection on a pretext loss)")
    group_mode: Literal["cache", "retain"] = pmx.Field(
        "retain", description="PGC needs the whole batch: retain = one forward (one micro-batch per step); cache for big accumulation groups")
    drop_path: float = pmx.Field(0.0, ge=0.0, lt=1.0, description="stochastic depth while pretraining (code: none)")


class FinetuneConfig(TrainConfig):
    epochs: int = pmx.Field(80, ge=1, description="fine-tuning epochs (upper bound; early stopping)")
    batch_size: int = pmx.Field(50, ge=1, description="patients per Cox batch")
    lr: float = pmx.Field(8e-4, gt=0, description="peak learning rate (paper 8e-4; code 5e-4)")
    min_lr: float = pmx.Field(1e-6, ge=0, description="learning rate at the end of the cosine")
    weight_decay: float = pmx.Field(0.05, ge=0, description="AdamW weight decay")
    warmup_epochs: float = pmx.Field(10.0, ge=0, description="linear warm-up epochs, then half-cycle cosine")
    layer_decay: float = pmx.Field(0.75, gt=0, le=1, description="layer-wise lr decay (BEiT/MAE)")
    monitor: str = pmx.Field("val_c_index", description="validation metric for early stopping and model selection")
    patience: int = pmx.Field(12, ge=0, description="stop after this many validations without improvement")
    group_mode: Literal["cache", "retain"] = pmx.Field(
        "retain", description="the Cox loss needs the whole batch: retain = one forward (one micro-batch per step); cache for big accumulation groups")
    drop_path: float = pmx.Field(0.1, ge=0.0, lt=1.0, description="stochastic depth while fine-tuning")


class EvalSection(pmx.ComponentConfig):
    folds: int = pmx.Field(5, ge=2, description="cross-validation folds (stratified by event)")
    val_fraction: float = pmx.Field(
        0.15, ge=0.0, lt=1.0, description="share of each training fold held out for early stopping (never the test fold)")
    pretrain_scope: Literal["fold-train", "train-val"] = pmx.Field(
        "fold-train", description="patients pretraining may see: the fold's training part, or training + validation (never test)")


class RuntimeSection(pmx.ComponentConfig):
    threads: int = pmx.Field(
        0, ge=0, description="torch CPU threads while training (0 = torch default; 1 is fastest for tiny models on a busy CPU)")
    keep_checkpoints: bool = pmx.Field(
        False, description="keep each finished fold's resumable trainer checkpoints (optimizer state); "
        "weights, metrics.jsonl and the best epoch are always kept in the run directory")
