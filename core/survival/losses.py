"""Survival losses in torch: Cox partial likelihood, discrete-time NLL, logistic hazard.

All three take one row per patient of a (mini-)batch and return a scalar. They only check
shapes (not values) so they stay cheap inside a training loop on a GPU; validate data with
:mod:`pmx.survival.checks` where it enters the system.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError

__all__ = ["cox_loss", "nll_discrete_loss", "logistic_hazard_loss"]

Ties = Literal["breslow", "efron"]
Reduction = Literal["mean", "sum"]


def _vector(values: Any, like: torch.Tensor, what: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    if not isinstance(values, torch.Tensor):
        values = np.ascontiguousarray(np.asarray(values))  # e.g. a field of a structured array
    tensor = torch.as_tensor(values, device=like.device)
    if dtype is not None:
        tensor = tensor.to(dtype)
    if tensor.ndim == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.ndim != 1:
        raise DataError(f"{what} must be 1-D (one value per patient); got shape {tuple(tensor.shape)}")
    return tensor


def _check_lengths(**tensors: torch.Tensor) -> None:
    sizes = {name: int(t.shape[0]) for name, t in tensors.items()}
    if len(set(sizes.values())) != 1:
        detail = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise DataError(f"mismatched batch lengths: {detail}; give one value per patient")


def cox_loss(
    risk: torch.Tensor,
    time: Any,
    event: Any,
    ties: Ties = "breslow",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Negative Cox log partial likelihood of ``risk`` (higher = earlier death).

    The risk set of an event at time t is every patient with time >= t (tied times included).
    ``ties="breslow"`` uses that risk set for every tied event; ``"efron"`` removes the
    average share of the tied events, which is what lifelines and R's ``coxph`` default to.
    ``reduction="mean"`` divides by the number of events, so the scale does not depend on the
    batch size; a batch without events returns 0 connected to ``risk`` (zero gradient, no NaN).
    """
    if ties not in ("breslow", "efron"):
        raise ValueError(f"ties must be 'breslow' or 'efron', got {ties!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    risk = _vector(risk, risk, "risk")
    time = _vector(time, risk, "time")
    event = _vector(event, risk, "event").bool()
    _check_lengths(risk=risk, time=time, event=event)

    n_events = int(event.sum())
    if n_events == 0:
        return risk.sum() * 0.0

    order = torch.argsort(time, descending=True, stable=True)
    r, t, e = risk[order], time[order], event[order]
    # Samples with the same time are contiguous after sorting; group g spans [start_g, end_g].
    _, counts = torch.unique_consecutive(t, return_counts=True)
    ends = torch.cumsum(counts, 0) - 1
    group = torch.repeat_interleave(torch.arange(len(counts), device=r.device), counts)
    # log sum_{j: t_j >= t_i} exp(r_j): the cumulative sum up to the last member of i's group.
    log_risk_set = torch.logcumsumexp(r, 0)[ends][group]

    r_ev = r[e]
    log_rs_ev = log_risk_set[e]
    if ties == "breslow":
        nll = (log_rs_ev - r_ev).sum()
    else:
        nll = (_efron_log_denominators(r_ev, group[e], log_rs_ev) - r_ev).sum()
    return nll / n_events if reduction == "mean" else nll


def _efron_log_denominators(
    r_ev: torch.Tensor, group_ev: torch.Tensor, log_rs_ev: torch.Tensor
) -> torch.Tensor:
    """log(sum_R exp(r) - l/d * sum_D exp(r)) for the l-th of the d tied events of each time."""
    _, inverse, d = torch.unique_consecutive(group_ev, return_inverse=True, return_counts=True)
    n_groups = len(d)
    # log sum over the tied events D of each group, shifted by the group max for stability.
    shift = torch.empty(n_groups, dtype=r_ev.dtype, device=r_ev.device).scatter_reduce(
        0, inverse, r_ev.detach(), reduce="amax", include_self=False
    )
    summed = torch.zeros(n_groups, dtype=r_ev.dtype, device=r_ev.device).index_add(
        0, inverse, torch.exp(r_ev - shift[inverse])
    )
    log_tied = (torch.log(summed) + shift)[inverse]
    # rank l = 0..d-1 of each event inside its group (events of a group are contiguous).
    first = torch.cumsum(d, 0) - d
    rank = torch.arange(len(r_ev), device=r_ev.device) - first[inverse]
    fraction = rank.to(r_ev.dtype) / d[inverse].to(r_ev.dtype)
    return log_rs_ev + torch.log1p(-fraction * torch.exp(log_tied - log_rs_ev))


def nll_discrete_loss(
    hazard_logits: torch.Tensor,
    bin: Any,
    event: Any,
    alpha: float = 0.0,
    eps: float | None = 1e-7,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Discrete-time survival NLL in the MCAT / Zadeh & Schmid form.

    hazards h = sigmoid(logits) per bin, S_k = prod_{j<=k} (1 - h_j), S_{-1} = 1. A patient
    with an event in bin y contributes -log S_{y-1} - log h_y; a censored one -log S_y. The
    total is ``(1 - alpha) * all + alpha * uncensored part``. Probabilities are clamped at
    ``eps`` before the log as in the reference code (``eps=None`` disables the clamp);
    everything is computed in log space.
    """
    logits = hazard_logits
    if logits.ndim != 2:
        raise DataError(f"hazard_logits must be [batch, bins]; got shape {tuple(logits.shape)}")
    y = _vector(bin, logits, "bin", torch.long)
    e = _vector(event, logits, "event").to(logits.dtype)
    _check_lengths(hazard_logits=logits, bin=y, event=e)
    n_bins = logits.shape[1]
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_bins):
        raise DataError(f"bin indices must be in [0, {n_bins - 1}]; got {int(y.min())}..{int(y.max())}")

    log_h = F.logsigmoid(logits)
    log_s = torch.cumsum(F.logsigmoid(-logits), dim=1)
    log_s_padded = torch.cat([torch.zeros_like(log_s[:, :1]), log_s], dim=1)  # S_{-1} = 1
    if eps is not None:
        floor = math.log(eps)
        log_h = log_h.clamp(min=floor)
        log_s_padded = log_s_padded.clamp(min=floor)
    col = y.unsqueeze(1)
    log_s_before = log_s_padded.gather(1, col).squeeze(1)
    log_s_at = log_s_padded.gather(1, col + 1).squeeze(1)
    log_h_at = log_h.gather(1, col).squeeze(1)
    uncensored = -e * (log_s_before + log_h_at)
    censored = -(1.0 - e) * log_s_at
    loss = (1.0 - alpha) * (censored + uncensored) + alpha * uncensored
    return loss.mean() if reduction == "mean" else loss.sum()


def logistic_hazard_loss(
    phi: torch.Tensor,
    interval: Any,
    event: Any,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Logistic-hazard NLL (pycox ``nll_logistic_hazard``) over T intervals.

    ``phi`` are hazard logits [batch, T]; ``interval`` is each patient's interval index from
    :class:`pmx.survival.bins.HazardCuts` (events at the interval that ends at or after the
    time, censored at the last cut at or before it). Each patient contributes binary
    cross-entropies for every interval up to and including its own: "survived" for all but
    the last, whose target is its event indicator.
    """
    if phi.ndim != 2:
        raise DataError(f"phi must be [batch, intervals]; got shape {tuple(phi.shape)}")
    idx = _vector(interval, phi, "interval", torch.long)
    e = _vector(event, phi, "event").to(phi.dtype)
    _check_lengths(phi=phi, interval=idx, event=e)
    n_int = phi.shape[1]
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n_int):
        raise DataError(f"interval indices must be in [0, {n_int - 1}]; got {int(idx.min())}..{int(idx.max())}")
    col = idx.unsqueeze(1)
    target = torch.zeros_like(phi).scatter(1, col, e.unsqueeze(1))
    bce = F.binary_cross_entropy_with_logits(phi, target, reduction="none")
    loss = bce.cumsum(1).gather(1, col).squeeze(1)
    return loss.mean() if reduction == "mean" else loss.sum()
