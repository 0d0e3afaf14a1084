"""Scalers fit on the training fold, applied to anyone (standard, min-max or none)."""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["FoldScaler", "ScalerName"]

ScalerName = Literal["standard", "minmax", "none"]


class FoldScaler:
    """Affine per-feature scaling whose parameters come from training rows only.

    Constant training features get scale 1 (not a division by zero); min-max output of new
    patients may leave [0, 1] unless ``clip`` is set.
    """

    def __init__(self, kind: ScalerName = "standard", clip: bool = False) -> None:
        self.kind = kind
        self.clip = clip
        self.offset_: np.ndarray = np.zeros(0)
        self.scale_: np.ndarray = np.ones(0)

    def fit(self, values: np.ndarray) -> "FoldScaler":
        values = np.asarray(values, dtype=np.float64)
        if self.kind == "standard":
            offset, scale = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        elif self.kind == "minmax":
            offset = np.nanmin(values, axis=0)
            scale = np.nanmax(values, axis=0) - offset
        else:
            offset, scale = np.zeros(values.shape[1]), np.ones(values.shape[1])
        self.offset_ = np.nan_to_num(offset)
        self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        out = (np.asarray(values, dtype=np.float64) - self.offset_) / self.scale_
        if self.clip and self.kind == "minmax":
            out = np.clip(out, 0.0, 1.0)
        return out
