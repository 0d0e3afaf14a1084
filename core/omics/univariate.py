"""The differential step for values that are not counts (methylation beta values, CNV, ...).

DESeq2's negative-binomial model only fits read counts. For beta values (bounded in [0, 1],
bimodal) pmx uses the rank-based Mann-Whitney U test between the same high/low-risk groups the
count types use, with Benjamini-Hochberg adjustment: no distributional assumption, invariant to
the logit (M-value) transform, and vectorised over all probes at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, mannwhitneyu

__all__ = ["mann_whitney", "adjust_bh", "Candidates", "pick_candidates"]


def adjust_bh(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN stays NaN."""
    padj = np.full(pvalues.shape, np.nan)
    ok = np.isfinite(pvalues)
    if ok.any():
        padj[ok] = false_discovery_control(np.clip(pvalues[ok], 0.0, 1.0), method="bh")
    return padj


def mann_whitney(values: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Two-sided Mann-Whitney U of 'high' vs 'low' per feature; pvalue, padj, effect."""
    x = values.loc[labels.index].to_numpy(dtype=np.float64)
    high = x[(labels == "high").to_numpy()]
    low = x[(labels == "low").to_numpy()]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        stat, pvalue = mannwhitneyu(high, low, axis=0, alternative="two-sided", method="asymptotic")
    pvalue = np.asarray(pvalue, dtype=np.float64)
    effect = np.asarray(stat, dtype=np.float64) / (len(high) * len(low)) - 0.5
    return pd.DataFrame({"effect": effect, "pvalue": pvalue, "padj": adjust_bh(pvalue)},
                        index=values.columns)


@dataclass
class Candidates:
    """Features passed to the forest and why (for the report)."""

    features: list[str]
    passed_threshold: int
    tested: int
    rule: str
    pvalues: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))


def pick_candidates(tests: pd.DataFrame, alpha: float, min_features: int, max_features: int) -> Candidates:
    """Features with padj < alpha, topped up or capped by p-value order.

    Order is padj, then raw p, then name (NaN last), so the result is deterministic. If fewer
    than ``min_features`` pass, the ``min_features`` smallest p-values are taken instead (the
    documented fallback: with a small fold few genes reach significance but the forest still
    needs candidates); if more than ``max_features`` pass, the smallest ``max_features``.
    """
    order = tests.assign(
        _padj=tests["padj"].fillna(np.inf), _p=tests["pvalue"].fillna(np.inf), _name=tests.index
    ).sort_values(["_padj", "_p", "_name"], kind="stable")
    passed = int((order["padj"] < alpha).sum())
    if passed < min_features:
        take, rule = min(min_features, len(order)), f"fallback: fewer than {min_features} with padj < {alpha}; took the smallest p-values"
    elif max_features and passed > max_features:
        take, rule = max_features, f"capped: {passed} with padj < {alpha}; kept the {max_features} smallest"
    else:
        take, rule = passed, f"padj < {alpha}"
    chosen = order.index[:take].tolist()
    return Candidates(chosen, passed, len(tests), rule, order["pvalue"].iloc[:take])
