"""``deseq2-rsf``: the omics pipeline of ContraMAE, POMP and HC-MAE (ContraMAE Table I).

Per omics type, on the training patients of a fold only:

1. missing values: drop features with any (RNA-seq, miRNA: 'Rem'), or KNN-impute them
   (methylation: 'Kim'); all-NaN features or patients are refused as broken input;
2. drop zero-variance features ('Var');
3. differential step ('Des') between survival groups (see ``groups.py``): PyDESeq2 on integer
   counts for count types (after the DESeq2 low-count prefilter, see ``deseq.py``); the
   Mann-Whitney U test for everything else (methylation beta values, CNV, ...). Candidates are
   the features with BH-adjusted p < ``alpha``, at most ``max_candidates`` (smallest p first);
   if fewer than ``min_candidates`` (default: ``top_k``) pass, the ``min_candidates`` smallest
   p-values instead. With the default the forest then only orders the candidates: on small
   folds few genes reach significance, and a forest grown on a few dozen patients ranks
   weak-effect genes little better than chance (measured on the demo cohort: the 30 smallest
   DESeq2 p-values held 19 planted genes, the forest's top 30 of the 90 smallest 10-18),
   so the differential test decides;
4. random survival forest on the candidates (all training patients of the type); keep the
   ``top_k`` most important by minimal depth (default) or OOB permutation importance, ties
   broken by p-value (see ``rsf.py``);
5. scaling fit on the training fold (counts are first library-size normalised with
   training-reference median-of-ratios size factors and log1p-transformed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..config import ComponentConfig, Field
from ..errors import ConfigError, DataError
from .data import canonical_type, require_features, training_rows
from .deseq import SizeFactors, check_counts, prefilter_counts, run_deseq2
from .filters import FittedKNNImputer, check_no_empty, features_without_missing, nonzero_variance
from .groups import SurvivalGroups, survival_groups
from .rsf import forest_importance
from .scaling import FoldScaler
from .selector import OmicsSelector
from .univariate import mann_whitney, pick_candidates

__all__ = ["DESeq2RSFSelector", "PAD_PREFIX"]

log = logging.getLogger("pmx.omics")

#: name prefix of the zero columns added when fewer than top_k features survive
PAD_PREFIX = "__pad_"


@dataclass
class _Prepared:
    """A type's training matrix after the cheap steps, waiting for the slow ones."""

    x: pd.DataFrame
    survival: pd.DataFrame
    groups: SurvivalGroups
    counts: bool
    imputer: FittedKNNImputer | None
    report: dict[str, Any]
    seconds: float


@dataclass
class _TypeFit:
    """Everything fitted for one omics type: enough to transform any patient."""

    counts: bool
    imputer: FittedKNNImputer | None
    size_factors: SizeFactors | None
    features: list[str]
    scaler: FoldScaler
    fill: np.ndarray
    pad: int
    report: dict[str, Any] = field(default_factory=dict)


class DESeq2RSFSelector(OmicsSelector):
    """Missing-value handling, zero-variance, PyDESeq2 / Mann-Whitney, RSF top-k, scaling (per type)."""

    name = "deseq2-rsf"
    version = "1"

    class Config(ComponentConfig):
        count_types: list[str] = Field(
            ["rna", "mirna"], description="omics types holding raw read counts (PyDESeq2); others use Mann-Whitney")
        impute_types: list[str] = Field(
            ["methylation"], description="omics types whose missing values are KNN-imputed; others drop features with any")
        knn_neighbors: int = Field(5, ge=1, description="neighbours of the KNN imputer")
        round_counts: bool = Field(False, description="round non-integer counts (RSEM estimates) instead of refusing them")
        min_variance: float = Field(0.0, ge=0.0, description="drop features whose training variance is <= this")
        min_group_size: int = Field(3, ge=2, description="minimum patients in each survival group of the design")
        alpha: float = Field(0.05, gt=0.0, le=1.0, description="adjusted-p threshold of the differential step")
        min_count: int = Field(10, ge=0, description="DESeq2 prefilter: reads a gene needs in enough patients")
        min_count_patients: int = Field(
            0, ge=0, description="DESeq2 prefilter: patients that need min_count reads (0 = size of the smaller group)")
        de_max_features: int = Field(
            20000, ge=0, description="cap on genes tested by DESeq2, by mean normalised count (0 = no cap)")
        de_inference: Literal["vectorized", "pydeseq2"] = Field(
            "vectorized", description="PyDESeq2 dispersion fits: all genes at once (fast) or PyDESeq2's per-gene default")
        min_candidates: int = Field(
            0, ge=0, description="fallback: if fewer pass alpha, take this many smallest p-values (0 = top_k)")
        max_candidates: int = Field(2000, ge=0, description="at most this many candidates enter the forest (0 = no cap)")
        top_k: int = Field(300, ge=1, description="features kept per omics type")
        pad: bool = Field(True, description="zero-pad to top_k columns when fewer features survive")
        n_estimators: int = Field(200, ge=1, description="trees of the random survival forest")
        min_samples_leaf: int = Field(5, ge=1, description="minimum patients per forest leaf")
        max_features: str = Field("sqrt", description="features tried per split: sqrt, log2, or a fraction like 0.1")
        importance: Literal["minimal-depth", "permutation"] = Field(
            "minimal-depth", description="forest importance: minimal depth (Ishwaran) or OOB permutation")
        n_repeats: int = Field(5, ge=1, description="permutations per feature (importance=permutation)")
        scaler: Literal["standard", "minmax", "none"] = Field("standard", description="scaling fit on the training fold")
        n_cpus: int = Field(1, ge=1, description="processes for PyDESeq2 and the forest")
        seed: int = Field(0, description="seed of the forest and the permutations")

    # -- fit -------------------------------------------------------------------------------------
    def _fit(self, omics: dict[str, pd.DataFrame], survival: pd.DataFrame) -> None:
        cfg = self.config
        if cfg.max_candidates and cfg.max_candidates < self._min_candidates():
            raise ConfigError(
                f"deseq2-rsf: max_candidates ({cfg.max_candidates}) < min_candidates ({self._min_candidates()}); "
                "raise max_candidates or lower min_candidates / top_k"
            )
        self._max_features()  # a bad value fails now, not after minutes of DESeq2
        # every type's input is checked (cheap) before any type's slow steps run, so a broken
        # methylation file is reported at once, not after the RNA-seq differential expression
        prepared = {kind: self._prepare_type(kind, training_rows(kind, matrix, survival), survival)
                    for kind, matrix in omics.items()}
        self._fits: dict[str, _TypeFit] = {}
        for kind, prep in prepared.items():
            started = time.perf_counter()
            fitted = self._select_type(kind, prep)
            fitted.report["seconds"] = round(time.perf_counter() - started + prep.seconds, 2)
            self._fits[kind] = fitted
            self._selected[kind] = fitted.features + [f"{PAD_PREFIX}{i}" for i in range(fitted.pad)]
            self.report_[kind] = fitted.report
            log.debug("deseq2-rsf %s: %s", kind, fitted.report)

    def _min_candidates(self) -> int:
        return self.config.min_candidates or self.config.top_k

    def _max_features(self) -> str | float:
        value = self.config.max_features
        try:
            return float(value)
        except ValueError:
            if value not in ("sqrt", "log2"):
                raise ConfigError(f"deseq2-rsf: max_features must be sqrt, log2 or a fraction; got {value!r}") from None
            return value

    def _prepare_type(self, kind: str, x: pd.DataFrame, survival: pd.DataFrame) -> _Prepared:
        """Checks, missing values, zero variance and the survival groups (fast)."""
        started = time.perf_counter()
        cfg = self.config
        counts = kind in {canonical_type(t) for t in cfg.count_types}
        impute = kind in {canonical_type(t) for t in cfg.impute_types}
        report: dict[str, Any] = {"patients": int(len(x)), "initial": int(x.shape[1])}
        check_no_empty(kind, x)

        imputer = None
        if impute:
            imputer = FittedKNNImputer(cfg.knn_neighbors).fit(x)
            x = imputer.transform(x)
            report["after_imputation"] = int(x.shape[1])
        else:
            x = x[features_without_missing(x)]
            report["after_missing"] = int(x.shape[1])
        if counts:
            x = check_counts(kind, x, cfg.round_counts)
        x = x[nonzero_variance(x, cfg.min_variance)]
        report["after_variance"] = int(x.shape[1])
        if x.shape[1] == 0:
            raise DataError(
                f"omics '{kind}': no feature is left after removing missing values and zero-variance "
                "features in this training fold; check the matrix (orientation, all-equal values)"
            )

        surv = survival.loc[x.index]
        groups = survival_groups(kind, surv, cfg.min_group_size)
        report.update(median_time=groups.median, high=len(groups.high), low=len(groups.low),
                      excluded=len(groups.excluded))
        return _Prepared(x, surv, groups, counts, imputer, report, time.perf_counter() - started)

    def _select_type(self, kind: str, prep: _Prepared) -> _TypeFit:
        """Differential step, forest importance, top-k and scaling (slow)."""
        cfg = self.config
        x, surv, groups, counts, imputer, report = (
            prep.x, prep.survival, prep.groups, prep.counts, prep.imputer, prep.report)
        labels = groups.labels()
        size_factors = None
        started = time.perf_counter()
        if counts:
            size_factors = SizeFactors().fit(x)
            factors = size_factors.factors(x)
            min_patients = cfg.min_count_patients or min(len(groups.high), len(groups.low))
            genes = prefilter_counts(x.loc[labels.index], cfg.min_count, min_patients,
                                     cfg.de_max_features, factors.loc[labels.index])
            report["tested"] = len(genes)
            if not genes:
                raise DataError(
                    f"omics '{kind}': no gene reaches {cfg.min_count} reads in {min_patients} patients; "
                    "are these raw counts? Lower min_count or check the input"
                )
            tests = run_deseq2(x.loc[labels.index, genes], labels, cfg.n_cpus, cfg.de_inference)
            test_name = "pydeseq2-wald"
        else:
            tests = mann_whitney(x, labels)
            report["tested"] = int(x.shape[1])
            test_name = "mann-whitney-u"
        candidates = pick_candidates(tests, cfg.alpha, self._min_candidates(), cfg.max_candidates)
        report.update(test=test_name, passed_alpha=candidates.passed_threshold,
                      candidates=len(candidates.features), candidate_rule=candidates.rule,
                      seconds_test=round(time.perf_counter() - started, 2))
        started = time.perf_counter()

        if counts:
            assert size_factors is not None
            values = np.log1p(x[candidates.features].to_numpy(dtype=np.float64)
                              / factors.to_numpy()[:, None])
        else:
            values = x[candidates.features].to_numpy(dtype=np.float64)
        forest = forest_importance(
            values, surv["time"].to_numpy(), surv["event"].to_numpy(),
            n_estimators=cfg.n_estimators, min_samples_leaf=cfg.min_samples_leaf,
            max_features=self._max_features(), n_repeats=cfg.n_repeats, n_jobs=cfg.n_cpus, seed=cfg.seed,
            method=cfg.importance,
        )
        rank = np.lexsort((np.arange(len(candidates.features)), -forest.importance))
        keep = rank[: cfg.top_k]
        features = [candidates.features[i] for i in keep]
        report.update(forest_oob_c_index=round(forest.oob_c_index, 4),
                      forest_used=int(forest.used.sum()), selected=len(features),
                      seconds_forest=round(time.perf_counter() - started, 2))

        kept_values = values[:, keep]
        scaler = FoldScaler(cfg.scaler).fit(kept_values)
        pad = max(0, cfg.top_k - len(features)) if cfg.pad else 0
        return _TypeFit(counts, imputer, size_factors, features, scaler,
                        fill=np.nanmean(kept_values, axis=0), pad=pad, report=report)

    # -- transform -------------------------------------------------------------------------------
    def _transform(self, omics: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for kind, fitted in self._fits.items():
            if kind not in omics:
                continue
            out[kind] = self._transform_type(kind, omics[kind], fitted)
        return out

    def _transform_type(self, kind: str, matrix: pd.DataFrame, fitted: _TypeFit) -> pd.DataFrame:
        needed = list(fitted.features)
        if fitted.imputer is not None:
            needed = fitted.imputer.columns_
        elif fitted.size_factors is not None:
            needed = list(dict.fromkeys(fitted.size_factors.genes_ + fitted.features))
        x = require_features(matrix, needed, f"omics '{kind}'")
        if fitted.imputer is not None:
            x = fitted.imputer.transform(x)
        if fitted.size_factors is not None:
            sub = check_counts(kind, x[needed].fillna(0.0), self.config.round_counts)
            factors = fitted.size_factors.factors(sub).to_numpy()[:, None]
            values = np.log1p(sub[fitted.features].to_numpy(dtype=np.float64) / factors)
            values[x[fitted.features].isna().to_numpy()] = np.nan
        else:
            values = x[fitted.features].to_numpy(dtype=np.float64)
        gaps = np.isnan(values)
        if gaps.any():
            # a selected feature missing for a new patient: the training mean (0 after scaling)
            rows = matrix.index[gaps.any(axis=1)].tolist()
            log.warning("omics '%s': %d patient(s) miss selected features (e.g. %s); filled with "
                        "training means", kind, len(rows), rows[:3])
            values = np.where(gaps, fitted.fill[None, :], values)
        scaled = fitted.scaler.transform(values)
        if fitted.pad:
            scaled = np.hstack([scaled, np.zeros((scaled.shape[0], fitted.pad))])
        return pd.DataFrame(scaled, index=matrix.index, columns=self.selected_features_[kind])
