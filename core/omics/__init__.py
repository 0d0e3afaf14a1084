"""Omics selectors: per-fold feature selection and normalisation of omics matrices.

Three built-in selectors (kind ``selector``), all fit on the training part of a fold only:

* ``deseq2-rsf`` - ContraMAE / POMP / HC-MAE: missing values, zero variance, PyDESeq2 (counts)
  or Mann-Whitney (methylation), random-survival-forest importance top-k, scaling;
* ``quantile-normal`` - impuTMAE: log1p, upper quartile, quantile-to-normal, min-max, padding;
* ``gene-families`` - CMTA / MCAT: six gene-family groups, standard scaling.

Inputs are ``{omics type: patients x features DataFrame}`` and a survival DataFrame (index =
patient ID, ``time``, ``event``). See docs/omics.md.

Names are imported lazily: every ``pmx`` command loads ``pmx.omics.plugin`` (the plugin module
registering the selectors), which should cost neither pandas nor scikit-survival / PyDESeq2.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "NotFittedError": "selector",
    "OmicsSelector": "selector",
    "as_survival_frame": "data",
    "canonical_type": "data",
    "check_matrices": "data",
    "DESeq2RSFSelector": "deseq2_rsf",
    "QuantileNormalSelector": "quantile_normal",
    "GeneFamiliesSelector": "gene_families",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
