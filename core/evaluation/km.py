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

__all__ = ["median_split", "logrank_p", "km_curves", "at_risk", "km_figure", "plot_km"]


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


def at_risk(time: Any, at: Any) -> np.ndarray:
    """Number of patients still at risk (time >= x) at each x of ``at``."""
    t = np.sort(np.asarray(time, dtype=np.float64))
    return len(t) - np.searchsorted(t, np.asarray(at, dtype=np.float64), side="left")


def km_figure(
    time: Any,
    event: Any,
    high: Any,
    title: str = "",
    p_value: float | None = None,
    time_unit: str = "days",
) -> Any:
    """The KM figure: curves with censoring marks, group sizes, p-value and numbers at risk.

    ``time_unit`` labels the x axis (cohorts store survival times in days, the default; pass ""
    for a bare "time"). The main axes is labelled ``"km"`` and the number-at-risk table below it
    ``"at-risk"`` (``Axes.get_label()``), so callers and tests can find them.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    t, e, _ = as_survival_arrays(time, event)
    groups = np.asarray(high, dtype=bool)
    curves = km_curves(t, e, groups)
    colors = {"low": "#1f77b4", "high": "#d62728"}
    fig, (ax, table) = plt.subplots(
        2, 1, figsize=(6.0, 5.2), dpi=120, gridspec_kw={"height_ratios": [5.0, 1.0]}
    )
    ax.set_label("km")
    table.set_label("at-risk")
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
    ax.set_title(title or "Kaplan-Meier curves, median predicted-risk split")
    # the p-value heads the legend, which "best" keeps off the curves
    legend_title = f"log-rank p = {p_value:.3g}" if p_value is not None else None
    ax.legend(loc="best", frameon=False, title=legend_title, alignment="left")

    # number at risk at each x tick, one row per group, in an axes under the curves
    lo, hi = ax.get_xlim()
    ticks = [float(x) for x in ax.get_xticks() if lo <= x <= hi]
    ax.set_xticks(ticks)
    table.set_xlim(lo, hi)
    table.set_ylim(0.0, 1.0)
    table.axis("off")
    where = blended_transform_factory(table.transAxes, table.transData)
    table.text(0.0, 1.0, "number at risk", transform=where, ha="left", va="bottom", fontsize=8)
    rows = [name for name in ("low", "high") if name in curves]
    for i, name in enumerate(rows):
        members = groups if name == "high" else ~groups
        y = 0.7 - 0.45 * i
        table.text(-0.05, y, name, transform=where, ha="right", va="center", fontsize=8,
                   color=colors[name])
        for x, n in zip(ticks, at_risk(t[members], ticks)):
            table.text(x, y, str(int(n)), ha="center", va="center", fontsize=8, color=colors[name])
    fig.tight_layout()
    return fig


def plot_km(
    time: Any,
    event: Any,
    high: Any,
    path: str | Path,
    title: str = "",
    p_value: float | None = None,
    time_unit: str = "days",
) -> Path:
    """Write a PNG of :func:`km_figure` (curves, censoring marks, p-value, numbers at risk)."""
    import matplotlib.pyplot as plt

    fig = km_figure(time, event, high, title=title, p_value=p_value, time_unit=time_unit)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
