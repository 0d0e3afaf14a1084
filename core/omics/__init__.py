"""Omics selectors: per-fold feature selection and normalisation of omics matrices.

Three built-in selectors (kind ``selector``), all fit on the training part of a fold only:

* ``deseq2-rsf`` - ContraMAE / POMP / HC-MAE: missing values, zero variance, PyDESeq2 (counts)
  or Mann-Whitney (methylation), random-survival-forest importance top-k, scaling;
* ``quantile-normal`` - impuTMAE: log1p, upper quartile, quantile-to-normal, min-max, padding;
* ``gene-families`` - CMTA / MCAT: six gene-family groups, standard scaling.

Inputs are ``{omics type: patients x features DataFrame}`` and a survival DataFrame (index =
patient ID, ``time``, ``event``). See docs/omics.md.
"""

from __future__ import annotations

from .data import as_survival_frame, canonical_type, check_matrices
from .selector import NotFittedError, OmicsSelector

__all__ = [
    "NotFittedError",
    "OmicsSelector",
    "as_survival_frame",
    "canonical_type",
    "check_matrices",
    "DESeq2RSFSelector",
    "QuantileNormalSelector",
    "GeneFamiliesSelector",
]


def __getattr__(name: str):  # lazy: importing pmx.omics stays cheap (no sksurv/pydeseq2)
    if name == "DESeq2RSFSelector":
        from .deseq2_rsf import DESeq2RSFSelector

        return DESeq2RSFSelector
    if name == "QuantileNormalSelector":
        from .quantile_normal import QuantileNormalSelector

        return QuantileNormalSelector
    if name == "GeneFamiliesSelector":
        from .gene_families import GeneFamiliesSelector

        return GeneFamiliesSelector
    raise AttributeError(name)
