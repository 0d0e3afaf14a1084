"""Count handling and differential expression with PyDESeq2 (RNA-seq and miRNA).

* ``check_counts``: DESeq2 models raw integer counts; normalised or negative values give
  meaningless dispersions, so they are refused with the patient and feature named.
* ``SizeFactors``: DESeq2's median-of-ratios normalisation with the per-gene reference
  (geometric means) fit on the training patients, so any patient can be normalised later
  without looking at the others.
* ``prefilter_counts``: the low-count filter the DESeq2 vignette recommends (a gene must reach
  ``min_count`` reads in at least as many patients as the smaller group has), optionally
  followed by a cap on the number of genes by mean normalised count. Both are independent of
  the group labels, so they do not bias the test (DESeq2's own independent filtering uses the
  same mean-count statistic). They are what makes 60,000 genes x 500 patients fit in minutes.
* ``run_deseq2``: PyDESeq2 Wald test of high vs low risk; returns p-values per gene. By default
  PyDESeq2 runs with an ``Inference`` that fits all genes' dispersions at once
  (``fast_inference.py``; same objective, results equal to PyDESeq2's own to ~1e-5).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import redirect_stdout
from io import StringIO

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["check_counts", "SizeFactors", "prefilter_counts", "run_deseq2"]

log = logging.getLogger("pmx.omics")


def check_counts(kind: str, matrix: pd.DataFrame, round_counts: bool = False) -> pd.DataFrame:
    """Integer, non-negative counts (as float64); non-integers are rounded only if asked."""
    values = matrix.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    negative = np.argwhere(finite & (values < 0))
    if negative.size:
        r, c = negative[0]
        raise DataError(
            f"omics '{kind}': DESeq2 needs raw read counts but patient {matrix.index[r]!r} has "
            f"{values[r, c]:g} for feature {matrix.columns[c]!r} ({len(negative)} negative value(s)). "
            "Give the unnormalised counts (e.g. the 'unstranded' column of GDC STAR files), or "
            "declare this type continuous with --set count_types=[...] without it"
        )
    fractional = np.argwhere(finite & (np.abs(values - np.round(values)) > 1e-6))
    if fractional.size:
        if round_counts:
            return pd.DataFrame(np.round(values), index=matrix.index, columns=matrix.columns)
        r, c = fractional[0]
        raise DataError(
            f"omics '{kind}': DESeq2 needs integer read counts but patient {matrix.index[r]!r} has "
            f"{values[r, c]:g} for feature {matrix.columns[c]!r} ({len(fractional)} non-integer "
            "value(s)). These look like normalised values (TPM/FPKM/log): give raw counts, set "
            "round_counts=true for estimated counts (RSEM), or drop this type from count_types"
        )
    return matrix


class SizeFactors:
    """Median-of-ratios size factors with a training reference (DESeq2's 'ratio' method).

    Reference genes are those with a positive count in every training patient; if there are
    none (sparse data), the geometric mean over positive counts is used ('poscounts').
    A new patient's factor is the median ratio over its positive reference genes.
    """

    def __init__(self) -> None:
        self.genes_: list[str] = []
        self.log_geomeans_: np.ndarray = np.zeros(0)

    def fit(self, counts: pd.DataFrame) -> "SizeFactors":
        values = counts.to_numpy(dtype=np.float64)
        positive = values > 0
        all_positive = positive.all(axis=0)
        with np.errstate(divide="ignore"):
            logs = np.where(positive, np.log(np.where(positive, values, 1.0)), 0.0)
        if all_positive.any():
            keep = all_positive
            geomeans = logs[:, keep].mean(axis=0)
        else:
            keep = positive.any(axis=0)
            geomeans = logs[:, keep].sum(axis=0) / values.shape[0]
        self.genes_ = counts.columns[keep].tolist()
        self.log_geomeans_ = geomeans
        return self

    def factors(self, counts: pd.DataFrame) -> pd.Series:
        values = counts[self.genes_].to_numpy(dtype=np.float64)
        positive = values > 0
        ratios = np.where(positive, np.log(np.where(positive, values, 1.0)) - self.log_geomeans_, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            log_factor = np.nanmedian(ratios, axis=1)
        if np.isnan(log_factor).any():
            pid = counts.index[int(np.flatnonzero(np.isnan(log_factor))[0])]
            raise DataError(
                f"patient {pid!r} has zero counts for every reference gene, so its library size "
                "cannot be normalised; check its counts file (empty or wrong column?)"
            )
        return pd.Series(np.exp(log_factor), index=counts.index, name="size_factor")

    def normalise(self, counts: pd.DataFrame) -> pd.DataFrame:
        """log1p(counts / size factor): library-size-free values for the forest and the output."""
        factors = self.factors(counts).to_numpy()[:, None]
        return pd.DataFrame(np.log1p(counts.to_numpy(dtype=np.float64) / factors),
                            index=counts.index, columns=counts.columns)


def prefilter_counts(counts: pd.DataFrame, min_count: int, min_samples: int,
                     max_genes: int, size_factors: pd.Series) -> list[str]:
    """Genes worth testing: enough reads in enough patients, then the top by mean count."""
    values = counts.to_numpy(dtype=np.float64)
    enough = (values >= min_count).sum(axis=0) >= max(1, min_samples)
    genes = counts.columns[enough]
    if max_genes and len(genes) > max_genes:
        normalised = values[:, enough] / size_factors.to_numpy()[:, None]
        base_mean = normalised.mean(axis=0)
        order = np.argsort(-base_mean, kind="stable")[:max_genes]
        genes = genes[np.sort(order)]
    return genes.tolist()


def run_deseq2(counts: pd.DataFrame, labels: pd.Series, n_cpus: int = 1,
               inference: str = "vectorized") -> pd.DataFrame:
    """Wald test of 'high' vs 'low' (``labels``) on integer ``counts`` (patients x genes).

    Returns baseMean, log2FoldChange, pvalue and padj (Benjamini-Hochberg, with PyDESeq2's
    independent filtering) per gene; untestable genes get NaN p-values. ``inference``:
    "vectorized" (dispersions of all genes fit at once, see ``fast_inference.py``) or
    "pydeseq2" (PyDESeq2's ``DefaultInference``, one scipy optimisation per gene).
    """
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    counts = counts.loc[labels.index]
    metadata = pd.DataFrame({"condition": labels.to_numpy()}, index=labels.index)
    if inference == "vectorized":
        from .fast_inference import VectorizedDispersionInference

        engine: DefaultInference = VectorizedDispersionInference(n_cpus=max(1, n_cpus))
    elif inference == "pydeseq2":
        engine = DefaultInference(n_cpus=max(1, n_cpus))
    else:
        raise ValueError(f"unknown DESeq2 inference {inference!r}; use vectorized or pydeseq2")
    integer = pd.DataFrame(counts.to_numpy(dtype=np.int64), index=counts.index, columns=counts.columns)
    with warnings.catch_warnings(), redirect_stdout(StringIO()):
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(counts=integer, metadata=metadata, design="~condition",
                           inference=engine, quiet=True)
        dds.deseq2()
        stats = DeseqStats(dds, contrast=["condition", "high", "low"], inference=engine, quiet=True)
        stats.summary()
    result = stats.results_df[["baseMean", "log2FoldChange", "pvalue", "padj"]].copy()
    result.index = result.index.astype(str)
    return result
