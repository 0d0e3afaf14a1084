"""``quantile-normal``: impuTMAE's omics preprocessing, fit on the training fold.

Per omics type: missing values (drop features with any, or KNN-impute for ``impute_types``);
``log1p`` for count-like types (``log_types``: RNA-seq, miRNA; methylation beta values are not
logged); per-patient upper-quartile normalisation (divide each patient by the 75th percentile of
its non-zero values, a per-patient operation that needs no fit); drop zero-variance features
(optionally keep the ``max_features`` most variable); a quantile transform to a standard normal
distribution; min-max scaling to [0, 1]; zero padding to a multiple of the encoder's patch size
(impuTMAE: 512 for RNA-seq, 1024 for methylation). Everything with parameters (imputer,
variance filter, quantiles, min and max) is fit on training patients only. It does not use
survival, so it works for folds with few events.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.preprocessing import QuantileTransformer

from ..config import ComponentConfig, Field
from ..errors import DataError
from .data import canonical_type, require_features, training_rows
from .filters import FittedKNNImputer, check_no_empty, features_without_missing
from .scaling import FoldScaler
from .selector import OmicsSelector

__all__ = ["QuantileNormalSelector", "upper_quartile_normalise"]

PAD_NAME = "__pad_{}"


def upper_quartile_normalise(kind: str, values: pd.DataFrame, nonzero: bool = True) -> pd.DataFrame:
    """Divide each patient (row) by the 75th percentile of its (non-zero) values."""
    x = values.to_numpy(dtype=np.float64)
    masked = np.where(x > 0, x, np.nan) if nonzero else x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q75 = np.nanpercentile(masked, 75, axis=1)
    bad = np.flatnonzero(~np.isfinite(q75) | (q75 <= 0))
    if bad.size:
        raise DataError(
            f"omics '{kind}': patient {values.index[bad[0]]!r} has no positive values, so its upper "
            "quartile is undefined; check its file (all zeros or negative values?)"
        )
    return pd.DataFrame(x / q75[:, None], index=values.index, columns=values.columns)


@dataclass
class _TypeFit:
    logged: bool
    imputer: FittedKNNImputer | None
    columns: list[str]
    features: list[str]
    quantiles: QuantileTransformer
    scaler: FoldScaler
    pad: int


class QuantileNormalSelector(OmicsSelector):
    """log1p, upper-quartile, zero-variance, quantile-to-normal, min-max, patch padding (impuTMAE)."""

    name = "quantile-normal"
    version = "1"

    class Config(ComponentConfig):
        log_types: list[str] = Field(["rna", "mirna"], description="omics types transformed with log1p first")
        impute_types: list[str] = Field(
            ["methylation"], description="omics types whose missing values are KNN-imputed; others drop features with any")
        knn_neighbors: int = Field(5, ge=1, description="neighbours of the KNN imputer")
        upper_quartile_nonzero: bool = Field(True, description="upper quartile over each patient's non-zero values only")
        min_variance: float = Field(0.0, ge=0.0, description="drop features whose training variance is <= this")
        max_features: int = Field(0, ge=0, description="keep the most variable features only (0 = all)")
        n_quantiles: int = Field(10000, ge=10, description="quantiles of the transform (capped at the training patients)")
        clip: bool = Field(True, description="clip new patients to the training [0, 1] range after min-max")
        patch_size: int = Field(512, ge=1, description="pad each type's width to a multiple of this")
        patch_sizes: dict[str, int] = Field(
            {"methylation": 1024}, description="per-type patch sizes overriding patch_size")
        seed: int = Field(0, description="seed of the quantile transform's subsampling")

    def _patch(self, kind: str) -> int:
        sizes = {canonical_type(k): v for k, v in self.config.patch_sizes.items()}
        return int(sizes.get(kind, self.config.patch_size))

    def _prepare(self, kind: str, x: pd.DataFrame, logged: bool) -> pd.DataFrame:
        if logged:
            if (x.to_numpy() < 0).any():
                pid = x.index[(x < 0).any(axis=1).to_numpy()][0]
                raise DataError(
                    f"omics '{kind}': patient {pid!r} has negative values but '{kind}' is log1p-"
                    "transformed as counts; give counts/TPM, or remove it from log_types"
                )
            x = np.log1p(x)
        return upper_quartile_normalise(kind, x, self.config.upper_quartile_nonzero)

    def _fit(self, omics: dict[str, pd.DataFrame], survival: pd.DataFrame) -> None:
        cfg = self.config
        self._fits: dict[str, _TypeFit] = {}
        for kind, matrix in omics.items():
            x = training_rows(kind, matrix, survival)
            report = {"patients": int(len(x)), "initial": int(x.shape[1])}
            check_no_empty(kind, x)
            imputer = None
            if kind in {canonical_type(t) for t in cfg.impute_types}:
                imputer = FittedKNNImputer(cfg.knn_neighbors).fit(x)
                x = imputer.transform(x)
            else:
                x = x[features_without_missing(x)]
            report["after_missing"] = int(x.shape[1])
            columns = x.columns.tolist()
            logged = kind in {canonical_type(t) for t in cfg.log_types}
            x = self._prepare(kind, x, logged)
            variance = x.var(axis=0, ddof=0).to_numpy()
            keep = np.flatnonzero(variance > cfg.min_variance)
            if cfg.max_features and keep.size > cfg.max_features:
                order = np.argsort(-variance[keep], kind="stable")[: cfg.max_features]
                keep = np.sort(keep[order])
            if keep.size == 0:
                raise DataError(f"omics '{kind}': every feature is constant in this training fold")
            features = x.columns[keep].tolist()
            report["after_variance"] = len(features)
            quantiles = QuantileTransformer(
                n_quantiles=min(cfg.n_quantiles, len(x)), output_distribution="normal",
                random_state=cfg.seed, copy=True,
            ).fit(x[features].to_numpy())
            normal = quantiles.transform(x[features].to_numpy())
            scaler = FoldScaler("minmax", clip=cfg.clip).fit(normal)
            patch = self._patch(kind)
            pad = (-len(features)) % patch
            report.update(selected=len(features), padded_width=len(features) + pad)
            self._fits[kind] = _TypeFit(logged, imputer, columns, features, quantiles, scaler, pad)
            self._selected[kind] = features + [PAD_NAME.format(i) for i in range(pad)]
            self.report_[kind] = report

    def _transform(self, omics: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for kind, fitted in self._fits.items():
            if kind not in omics:
                continue
            # upper-quartile normalisation is per patient over the same features as training
            needed = fitted.imputer.columns_ if fitted.imputer is not None else fitted.columns
            x = require_features(omics[kind], needed, f"omics '{kind}'")
            if fitted.imputer is not None:
                x = fitted.imputer.transform(x)
            elif x.isna().to_numpy().any():
                pid = x.index[x.isna().any(axis=1).to_numpy()][0]
                raise DataError(
                    f"omics '{kind}': patient {pid!r} has missing values in features kept at fit time; "
                    f"impute them first or add '{kind}' to impute_types"
                )
            x = self._prepare(kind, x, fitted.logged)
            values = fitted.scaler.transform(fitted.quantiles.transform(x[fitted.features].to_numpy()))
            if fitted.pad:
                values = np.hstack([values, np.zeros((values.shape[0], fitted.pad))])
            out[kind] = pd.DataFrame(values, index=x.index, columns=self.selected_features_[kind])
        return out
