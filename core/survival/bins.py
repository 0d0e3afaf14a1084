"""Time discretisation for discrete-time heads, always fit on the training part of a fold.

Two schemes, following the methods that use them:

* :class:`QuantileBins` (CMTA / MCAT): ``n_bins`` bins whose inner edges are quantiles of the
  *uncensored* training times; the outer edges are extended to 0 and +inf so that validation
  and test times outside the training range still fall in the first / last bin. The reference
  code computed the quantiles on the whole cohort (test fold included); pmx never does.
* :class:`HazardCuts` (pycox ``LabTransDiscreteTime``, used by impuTMAE with 20 intervals):
  ``n_intervals`` cut points from 0 to the largest training time, equidistant or at evenly
  spaced Kaplan-Meier survival levels. Events map to the first cut at or after their time,
  censored patients to the last cut at or before it; times beyond the last cut are censored
  there.

Both transform numpy arrays or torch tensors (on any device) and store their fitted edges as
plain arrays so heads can keep them in their state dict.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..errors import DataError
from .checks import as_survival_arrays

__all__ = ["QuantileBins", "HazardCuts", "kaplan_meier"]


def _searchsorted(edges: np.ndarray, values: Any, side: str) -> Any:
    """np.searchsorted for arrays, torch.searchsorted (same device) for tensors."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(values, torch.Tensor):
        dtype = values.dtype if values.is_floating_point() else torch.float64
        boundaries = torch.as_tensor(edges, dtype=dtype, device=values.device)
        return torch.searchsorted(boundaries, values.to(dtype).contiguous(), right=(side == "right"))
    return np.searchsorted(edges, np.asarray(values, dtype=np.float64), side=side)


class QuantileBins:
    """MCAT-style bins: quantiles of uncensored training times, outer edges extended."""

    def __init__(self, n_bins: int = 4):
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        self.n_bins = n_bins
        self.inner_edges_: np.ndarray | None = None
        self.max_time_: float | None = None

    def fit(self, time: Any, event: Any) -> "QuantileBins":
        """Fit on the training fold only: (time, event) of the training patients."""
        times, events, _ = as_survival_arrays(time, event, source="training fold")
        uncensored = times[events]
        if uncensored.size == 0:
            raise DataError(
                "cannot fit survival time bins: the training fold has no uncensored patient; "
                "every fold needs events (use fewer folds or a cohort with more events)"
            )
        quantiles = np.quantile(uncensored, np.linspace(0.0, 1.0, self.n_bins + 1))
        self.inner_edges_ = quantiles[1:-1].astype(np.float64)
        self.max_time_ = float(times.max())
        return self

    @classmethod
    def from_edges(cls, inner_edges: Any, max_time: float | None = None) -> "QuantileBins":
        bins = cls(len(np.asarray(inner_edges)) + 1)
        bins.inner_edges_ = np.asarray(inner_edges, dtype=np.float64)
        bins.max_time_ = max_time
        return bins

    def _edges(self) -> np.ndarray:
        if self.inner_edges_ is None:
            raise RuntimeError("QuantileBins is not fit; call fit(train_time, train_event) first")
        return self.inner_edges_

    @property
    def edges_(self) -> np.ndarray:
        """All n_bins + 1 edges, outer ones at 0 and +inf."""
        return np.concatenate([[0.0], self._edges(), [np.inf]])

    def transform(self, time: Any) -> Any:
        """Bin index per time; bins are [lower, upper) as in ``pd.cut(right=False)``."""
        return _searchsorted(self._edges(), time, side="right")

    def time_grid(self) -> np.ndarray:
        """Time at which each bin's survival S_k is reported (its upper edge; the last bin
        uses the largest training time)."""
        inner = self._edges()
        last = self.max_time_ if self.max_time_ is not None else (inner[-1] if inner.size else 1.0)
        if inner.size:
            last = max(last, float(inner[-1]))
        return np.concatenate([inner, [last]])


def kaplan_meier(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct times and the Kaplan-Meier survival just after each (scikit-survival)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    times, surv = kaplan_meier_estimator(event.astype(bool), time)
    return np.asarray(times, dtype=np.float64), np.asarray(surv, dtype=np.float64)


class HazardCuts:
    """pycox-style interval cuts for the logistic-hazard head, fit on the training fold."""

    def __init__(self, n_intervals: int = 20, scheme: Literal["equidistant", "quantiles"] = "equidistant"):
        if n_intervals < 2:
            raise ValueError(f"n_intervals must be >= 2, got {n_intervals}")
        if scheme not in ("equidistant", "quantiles"):
            raise ValueError(f"scheme must be 'equidistant' or 'quantiles', got {scheme!r}")
        self.n_intervals = n_intervals
        self.scheme = scheme
        self.cuts_: np.ndarray | None = None

    def fit(self, time: Any, event: Any) -> "HazardCuts":
        times, events, _ = as_survival_arrays(time, event, source="training fold")
        if not events.any():
            raise DataError(
                "cannot fit hazard intervals: the training fold has no uncensored patient"
            )
        t_max = float(times.max())
        if self.scheme == "equidistant":
            cuts = np.linspace(0.0, t_max, self.n_intervals)
        else:
            # Cut where the KM curve crosses evenly spaced survival levels, so each interval
            # holds about the same share of events (pycox ``cuts_quantiles``).
            km_times, km_surv = kaplan_meier(times, events)
            levels = np.linspace(km_surv.min(), km_surv.max(), self.n_intervals)
            index = np.searchsorted(km_surv[::-1], levels)[::-1]
            cuts = np.sort(km_times[::-1][np.clip(index, 0, len(km_times) - 1)])
            cuts[0] = 0.0
            cuts[-1] = t_max
        self.cuts_ = cuts.astype(np.float64)
        return self

    @classmethod
    def from_cuts(cls, cuts: Any) -> "HazardCuts":
        values = np.asarray(cuts, dtype=np.float64)
        obj = cls(len(values))
        obj.cuts_ = values
        return obj

    def _cuts(self) -> np.ndarray:
        if self.cuts_ is None:
            raise RuntimeError("HazardCuts is not fit; call fit(train_time, train_event) first")
        return self.cuts_

    def transform(self, time: Any, event: Any) -> tuple[Any, Any]:
        """(interval index, event) per patient; times past the last cut become censored."""
        cuts = self._cuts()
        try:
            import torch

            is_torch = isinstance(time, torch.Tensor)
        except ImportError:  # pragma: no cover
            is_torch = False
        if is_torch:
            event = torch.as_tensor(event, device=time.device).bool()
            beyond = time > cuts[-1]
            event = event & ~beyond
            right = _searchsorted(cuts, time, side="left")  # first cut >= t
            left = _searchsorted(cuts, time, side="right") - 1  # last cut <= t
            index = torch.where(event, right, left).clamp(0, len(cuts) - 1)
            return index, event
        t = np.asarray(time, dtype=np.float64)
        e = np.asarray(event).astype(bool) & ~(t > cuts[-1])
        right = np.searchsorted(cuts, t, side="left")
        left = np.searchsorted(cuts, t, side="right") - 1
        return np.clip(np.where(e, right, left), 0, len(cuts) - 1), e

    def time_grid(self) -> np.ndarray:
        """Times of the survival curve's points (the cuts)."""
        return self._cuts().copy()
