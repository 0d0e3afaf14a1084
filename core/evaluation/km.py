"""Kaplan-Meier curves of the median-risk split and the log-rank test (scikit-survival).

The papers split patients at the median predicted risk into high- and low-risk groups and
report the log-rank p-value. With cross-validated predictions the risk scales of different
folds are not comparable, so pmx splits each fold at its own median and pools the groups.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..survival.checks import as_survival_arrays, structured_y

__all__ = ["median_split", "logrank_p", "km_curves", "plot_km"]


def median_split(risk: Any, fold: Any | None = None) -> np.ndarray:
    """True = high risk (risk above the median of its fold; ties at the median go low)."""
    r = np.asarray(risk, dtype=np.float64)
    high = np.zeros(len(r), dtype=bool)
    groups = np.zeros(len(r), dtype=np.int64) if fold is None else np.asarray(fold)
    if len(groups) != len(r):
        raise DataError(f"mismatched lengths: risk={len(r)}, fold={len(groups)}")
    for value in np.unique(groups):
        members = groups == value
        high[members] = r[members] > np.median(r[members])
    return high


def logrank_p(time: Any, event: Any, high: Any) -> float:
    """Two-sided log-rank p-value comparing the high- and low-risk groups."""
    from sksurv.compare import compare_survival

    t, e, _ = as_survival_arrays(time, event)
    groups = np.asarray(high, dtype=bool)
    if len(groups) != len(t):
        raise DataError(f"mismatched lengths: time={len(t)}, groups={len(groups)}")
    if groups.all() or not groups.any():
        raise DataError(
            "the median-risk split left one group empty (all predicted risks are equal?); "
            "a log-rank test needs two groups"
        )
    if not e.any():
        raise DataError("no events: the log-rank test is undefined when every patient is censored")
    _, p_value = compare_survival(structured_y(t, e), groups.astype(int))
    return float(p_value)


def km_curves(time: Any, event: Any, high: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'low': (times, survival), 'high': (times, survival)} step-function KM estimates."""
    from sksurv.nonparametric import kaplan_meier_estimator

    t, e, _ = as_survival_arrays(time, event)
    groups = np.asarray(high, dtype=bool)
    curves = {}
    for name, members in (("low", ~groups), ("high", groups)):
        if members.any():
            x, s = kaplan_meier_estimator(e[members], t[members])
            curves[name] = (np.asarray(x), np.asarray(s))
    return curves


def plot_km(
    time: Any,
    event: Any,
    high: Any,
    path: str | Path,
    title: str = "",
    p_value: float | None = None,
    time_unit: str = "",
) -> Path:
    """Write a PNG of the two KM curves with censoring marks, group sizes and the p-value."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    t, e, _ = as_survival_arrays(time, event)
    groups = np.asarray(high, dtype=bool)
    curves = km_curves(t, e, groups)
    colors = {"low": "#1f77b4", "high": "#d62728"}
    fig, ax = plt.subplots(figsize=(6.0, 4.5), dpi=120)
    for name, (x, s) in curves.items():
        members = groups if name == "high" else ~groups
        xs = np.concatenate([[0.0], x])
        ys = np.concatenate([[1.0], s])
        label = f"{name} risk (n={int(members.sum())}, events={int(e[members].sum())})"
        ax.step(xs, ys, where="post", color=colors[name], label=label)
        censored = t[members & ~e]
        if censored.size:
            heights = ys[np.searchsorted(xs, censored, side="right") - 1]
            ax.plot(censored, heights, "|", color=colors[name], markersize=7)
    ax.set_xlabel(f"time ({time_unit})" if time_unit else "time")
    ax.set_ylabel("survival probability")
    ax.set_ylim(0.0, 1.05)
    ax.set_xlim(left=0.0)
    if p_value is not None:
        ax.text(0.98, 0.95, f"log-rank p = {p_value:.3g}", transform=ax.transAxes,
                ha="right", va="top")
    ax.set_title(title or "Kaplan-Meier curves, median predicted-risk split")
    ax.legend(loc="lower left", frameon=False)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
