"""Survival metrics: Harrell's C, bootstrap CI, Uno's C, Antolini's C, time-dependent AUC, IBS.

scikit-survival is called wherever it has the metric (Harrell, Uno, cumulative/dynamic AUC,
integrated Brier score) so numbers match the reference exactly; pmx adds input validation with
clear errors, the bootstrap CI and Antolini's time-dependent C (which scikit-survival lacks).
Convention everywhere: higher ``risk`` = worse prognosis (earlier death).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from .checks import as_survival_arrays, check_risk, structured_y

__all__ = [
    "harrell_c",
    "bootstrap_c_index",
    "uno_c",
    "antolini_c",
    "cumulative_dynamic_auc",
    "integrated_brier",
    "survival_at",
    "breslow_survival",
    "evaluation_times",
]


def _no_pairs(source: str) -> DataError:
    where = f" in {source}" if source else ""
    return DataError(
        f"the C-index is undefined{where}: there is no comparable pair (all patients censored, "
        "or every event at the same time as all others). A test fold needs at least one event "
        "before someone else's follow-up ends"
    )


def harrell_c(
    time: Any, event: Any, risk: Any, ids: Sequence[Any] | None = None, source: str = ""
) -> float:
    """Harrell's concordance index, exactly scikit-survival's ``concordance_index_censored``.

    Pairs (i, j) are comparable when i has an event and t_i < t_j, or t_i == t_j with j
    censored; a tie in risk (closer than 1e-8, scikit-survival's ``tied_tol``) counts one half.
    """
    from sksurv.metrics import concordance_index_censored

    t, e, r = as_survival_arrays(time, event, risk, ids=ids, source=source)
    if not e.any():
        raise _no_pairs(source)
    try:
        return float(concordance_index_censored(e, t, r)[0])
    except (ValueError, ZeroDivisionError):
        raise _no_pairs(source) from None


TIED_TOL = 1e-8  # scikit-survival's default: risks closer than this are a tie


def _pair_matrices(t: np.ndarray, e: np.ndarray, r: np.ndarray, dtype: Any = np.float64):
    """comparable[i, j] and concordant[i, j] (1, 0.5 for a risk tie, 0) in sksurv's rules."""
    ti, tj = t[:, None], t[None, :]
    comparable = e[:, None] & ((ti < tj) | ((ti == tj) & ~e[None, :]))
    ri, rj = r[:, None], r[None, :]
    tie = np.abs(ri - rj) <= TIED_TOL
    score = np.where(tie, 0.5, np.where(ri > rj, 1.0, 0.0))
    return comparable.astype(dtype), (comparable * score).astype(dtype)


def bootstrap_c_index(
    time: Any,
    event: Any,
    risk: Any,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    source: str = "",
) -> dict[str, float]:
    """Harrell's C with a percentile bootstrap CI (patients resampled with replacement).

    A resample is a vector of multiplicities w, and copies of one patient are never a
    comparable pair (same time, same event), so C of a resample is
    w'Kw / w'Mw with K, M the concordant / comparable pair matrices of the original sample:
    every replicate is exact without recomputing pairs.
    """
    t, e, r = as_survival_arrays(time, event, risk, source=source)
    estimate = harrell_c(t, e, r, source=source)
    n = len(t)
    rng = np.random.default_rng(seed)
    dtype = np.float64 if n <= 2000 else np.float32
    comparable, concordant = _pair_matrices(t, e, r, dtype)
    values: list[np.ndarray] = []
    chunk = max(1, int(2e7 // max(n * n, 1)))
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(dtype)
        num = np.einsum("bi,ij,bj->b", weights, concordant, weights, optimize=True)
        den = np.einsum("bi,ij,bj->b", weights, comparable, weights, optimize=True)
        ok = den > 0
        values.append(num[ok] / den[ok])
        done += size
    samples = np.concatenate(values) if values else np.empty(0)
    if samples.size < max(10, n_boot // 2):
        raise DataError(
            f"bootstrap CI of the C-index failed{' in ' + source if source else ''}: too few "
            "resamples had a comparable pair; the sample has too few events"
        )
    tail = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(samples, [tail, 1.0 - tail])
    return {
        "c_index": estimate,
        "lower": float(lower),
        "upper": float(upper),
        "std": float(samples.std(ddof=1)),
        "confidence": confidence,
        "n_boot": int(samples.size),
    }


def uno_c(
    train_time: Any,
    train_event: Any,
    time: Any,
    event: Any,
    risk: Any,
    tau: float | None = None,
) -> float:
    """Uno's IPCW C-index (scikit-survival ``concordance_index_ipcw``).

    The censoring distribution is estimated on the training part; test times beyond the
    largest training time are not supported by that estimate, so ``tau`` defaults to the
    largest training follow-up.
    """
    from sksurv.metrics import concordance_index_ipcw

    tt, te, _ = as_survival_arrays(train_time, train_event, source="training part")
    t, e, r = as_survival_arrays(time, event, risk, source="test part")
    if tau is None:
        tau = float(tt.max())
    try:
        return float(concordance_index_ipcw(structured_y(tt, te), structured_y(t, e), r, tau=tau)[0])
    except (ValueError, ZeroDivisionError) as exc:
        raise DataError(f"Uno's C-index could not be computed: {exc}") from None


def survival_at(surv: Any, time_grid: Any, times: Any) -> np.ndarray:
    """Step-function survival S(t) read off curves given on ``time_grid`` (n x m).

    S(t) is the value at the last grid time <= t, and 1 before the first grid time.
    """
    s = np.asarray(surv, dtype=np.float64)
    grid = np.asarray(time_grid, dtype=np.float64)
    index = np.searchsorted(grid, np.asarray(times, dtype=np.float64), side="right") - 1
    padded = np.concatenate([np.ones((s.shape[0], 1)), s], axis=1)
    return padded[:, index + 1]


def antolini_c(
    time: Any,
    event: Any,
    surv: Any,
    time_grid: Any | None = None,
    surv_index: Any | None = None,
    method: str = "antolini",
) -> float:
    """Antolini's time-dependent concordance for models that predict survival curves.

    C_td = P(S_i(t_i) < S_j(t_i) | i has an event, t_i < t_j), with the pair set of Harrell's C
    (a censored j tied with i's event time counts as later). ``surv`` is n x m: each patient's
    survival on ``time_grid``; S_k(t_i) is read at the first grid time >= t_i (pycox's
    convention) or at the column given per patient in ``surv_index``.

    ``method="antolini"`` counts a pair concordant only when S_i(t_i) < S_j(t_i) strictly (the
    paper and pycox's ``"antolini"``); ``"adj_antolini"`` gives ties in S one half and also
    scores pairs of tied event times (pycox's default).
    """
    t, e, _ = as_survival_arrays(time, event)
    s = np.asarray(surv, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != len(t):
        raise DataError(f"surv must be [patients, times] with {len(t)} rows; got shape {s.shape}")
    if not np.isfinite(s).all():
        raise DataError("surv has NaN/infinite values; the model produced invalid survival curves")
    if surv_index is None:
        if time_grid is None:
            raise ValueError("give time_grid (the curve's times) or surv_index")
        grid = np.asarray(time_grid, dtype=np.float64)
        if grid.shape != (s.shape[1],):
            raise DataError(f"time_grid has {grid.size} times but surv has {s.shape[1]} columns")
        idx = np.clip(np.searchsorted(grid, t, side="left"), 0, s.shape[1] - 1)
    else:
        idx = np.asarray(surv_index, dtype=np.int64)
        if idx.shape != t.shape or idx.min() < 0 or idx.max() >= s.shape[1]:
            raise DataError("surv_index must give one valid column of surv per patient")
    if method not in ("antolini", "adj_antolini"):
        raise ValueError(f"method must be 'antolini' or 'adj_antolini', got {method!r}")

    s_own = s[np.arange(len(t)), idx]  # S_i(t_i)
    numerator = 0.0
    denominator = 0.0
    for start in range(0, len(t), 1024):  # rows i, chunked to bound memory
        rows = slice(start, min(start + 1024, len(t)))
        ti, ei = t[rows, None], e[rows, None]
        s_i = s_own[rows, None]
        s_j = s[:, idx[rows]].T  # S_j(t_i) for each i in rows (columns j)
        earlier = (ti < t[None, :]) & ei
        tied = ti == t[None, :]
        if method == "antolini":
            comparable = earlier | (tied & ei & ~e[None, :])
            concordant = comparable & (s_i < s_j)
            numerator += concordant.sum()
        else:
            comparable = earlier | (tied & (ei | e[None, :]))
            own = np.arange(comparable.shape[0])
            comparable[own, start + own] = False  # a patient is not paired with itself
            both = tied & ei & e[None, :]
            only_i = (earlier | (tied & ei & ~e[None, :]))
            only_j = tied & ~ei & e[None, :]
            half = 0.5 * (s_i == s_j)
            score = np.where(only_i, (s_i < s_j) + half, 0.0)
            score += np.where(only_j, (s_i > s_j) + half, 0.0)
            score += np.where(both, 1.0 - 0.5 * (s_i != s_j), 0.0)
            numerator += (score * comparable).sum()
        denominator += comparable.sum()
    if denominator == 0:
        raise _no_pairs("")
    return float(numerator / denominator)


def evaluation_times(
    time: Any,
    event: Any,
    quantiles: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    limit: float | None = None,
) -> np.ndarray:
    """Evaluation times for AUC / Brier: quantiles of the event times, strictly inside the
    follow-up range (scikit-survival requires times < the largest observed time) and below
    ``limit`` (the largest training time, where the IPCW estimate ends)."""
    t, e, _ = as_survival_arrays(time, event)
    if not e.any():
        raise _no_pairs("")
    times = np.unique(np.quantile(t[e], quantiles))
    upper = t.max() if limit is None else min(t.max(), limit)
    times = times[(times >= t.min()) & (times < upper)]
    if times.size == 0:
        raise DataError("no evaluation time lies inside the follow-up range of the test patients")
    return times


def _within_training_followup(
    train_time: np.ndarray, time: np.ndarray, event: np.ndarray, grid: np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Test follow-up truncated at the largest training time, where the IPCW estimate ends.

    For evaluation times below that point, a test patient followed beyond it is a control
    (alive) at every evaluation time either way, so truncating its time (as censored) changes
    no AUC or Brier term; it only avoids scikit-survival's refusal to extrapolate the
    censoring distribution.
    """
    limit = float(train_time.max())
    if grid.size and grid.max() >= limit:
        raise DataError(
            f"{what}: evaluation times must be below the largest training time {limit:g} "
            f"(got up to {grid.max():g}); the censoring distribution is unknown beyond it"
        )
    beyond = time > limit
    if not beyond.any():
        return time, event
    return np.where(beyond, limit, time), event & ~beyond


def cumulative_dynamic_auc(
    train_time: Any, train_event: Any, time: Any, event: Any, risk: Any, times: Any | None = None
) -> tuple[np.ndarray, float, np.ndarray]:
    """Cumulative/dynamic AUC(t) and its mean (scikit-survival); returns (auc, mean, times)."""
    from sksurv.metrics import cumulative_dynamic_auc as _auc

    tt, te, _ = as_survival_arrays(train_time, train_event, source="training part")
    t, e, r = as_survival_arrays(time, event, risk, source="test part")
    grid = evaluation_times(t, e, limit=tt.max()) if times is None else np.asarray(times, dtype=np.float64)
    t, e = _within_training_followup(tt, t, e, grid, "time-dependent AUC")
    try:
        auc, mean = _auc(structured_y(tt, te), structured_y(t, e), r, grid)
    except ValueError as exc:
        raise DataError(f"time-dependent AUC could not be computed: {exc}") from None
    return np.asarray(auc), float(mean), grid


def integrated_brier(
    train_time: Any,
    train_event: Any,
    time: Any,
    event: Any,
    surv: Any,
    time_grid: Any | None = None,
    times: Any | None = None,
) -> float:
    """Integrated Brier score (scikit-survival, IPCW from the training part).

    ``surv`` is either n x len(times) survival probabilities at ``times``, or curves on
    ``time_grid`` that are read as step functions at ``times``.
    """
    from sksurv.metrics import integrated_brier_score

    tt, te, _ = as_survival_arrays(train_time, train_event, source="training part")
    t, e, _ = as_survival_arrays(time, event, source="test part")
    grid = evaluation_times(t, e, limit=tt.max()) if times is None else np.asarray(times, dtype=np.float64)
    probs = survival_at(surv, time_grid, grid) if time_grid is not None else np.asarray(surv, dtype=np.float64)
    if probs.shape != (len(t), len(grid)):
        raise DataError(f"survival probabilities must be [{len(t)}, {len(grid)}]; got {probs.shape}")
    t, e = _within_training_followup(tt, t, e, grid, "integrated Brier score")
    try:
        return float(integrated_brier_score(structured_y(tt, te), structured_y(t, e), probs, grid))
    except ValueError as exc:
        raise DataError(f"integrated Brier score could not be computed: {exc}") from None


def breslow_survival(
    train_risk: Any, train_time: Any, train_event: Any, risk: Any, times: Any
) -> np.ndarray:
    """Survival curves of a Cox model: Breslow baseline fit on training risks (sksurv)."""
    from sksurv.linear_model.coxph import BreslowEstimator

    tt, te, tr = as_survival_arrays(train_time, train_event, train_risk, source="training part")
    r = check_risk(risk)
    estimator = BreslowEstimator().fit(tr, te, tt)
    functions = estimator.get_survival_function(r)
    grid = np.asarray(times, dtype=np.float64)
    return np.vstack([fn(np.clip(grid, fn.x[0], fn.x[-1])) for fn in functions])
