"""The planted survival signal of the demo cohort: latent factors, risk, times, censoring.

Each patient has standard-normal latent factors. The true log-hazard is a weighted sum of them;
which modality can *see* a factor decides the C-index that modality can reach at best:

============  ===============================  =====================
factor        visible in                       how
============  ===============================  =====================
density       slides                           nuclei per tissue area
hue           slides                           stain colour
texture       slides                           stroma fibre frequency
rna_program   rna                              a planted gene set
mirna_program mirna                            a planted miRNA set
meth_program  methylation                      a planted CpG set
grade         slides, rna, methylation         nuclear size; genes; CpGs
immune        slides, rna, mirna               lymphocyte clusters; genes; miRNAs
============  ===============================  =====================

The risk reachable from a set of modalities is the part of the log-hazard made of the factors
they see; its Harrell C-index against the simulated (time, event) is what truth.json reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FACTORS", "VISIBLE_IN", "RISK_WEIGHTS", "SurvivalDraw", "draw_factors", "draw_survival",
           "reachable_risk", "harrell_c"]

FACTORS: tuple[str, ...] = (
    "density", "hue", "texture", "rna_program", "mirna_program", "meth_program", "grade", "immune",
)
#: modality -> factors it shows
VISIBLE_IN: dict[str, tuple[str, ...]] = {
    "slide": ("density", "hue", "texture", "grade", "immune"),
    "rna": ("rna_program", "grade", "immune"),
    "mirna": ("mirna_program", "immune"),
    "methylation": ("meth_program", "grade"),
}
#: log-hazard weight of each factor (per standard deviation)
RISK_WEIGHTS: dict[str, float] = {
    "density": 0.75, "hue": -0.6, "texture": 0.55,
    "rna_program": 0.75, "mirna_program": -0.55, "meth_program": 0.6,
    "grade": 0.55, "immune": -0.5,
}


@dataclass(frozen=True)
class SurvivalDraw:
    """Simulated survival of every patient (days), with the event time before censoring."""

    time: np.ndarray
    event: np.ndarray
    event_time: np.ndarray
    censor_time: np.ndarray


def draw_factors(rng: np.random.Generator, n_patients: int) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal(n_patients) for name in FACTORS}


def reachable_risk(factors: dict[str, np.ndarray], modalities: tuple[str, ...] | list[str]) -> np.ndarray:
    """Log-hazard part made of the factors that any of ``modalities`` shows."""
    seen = sorted({f for m in modalities for f in VISIBLE_IN[m]})
    n = len(next(iter(factors.values())))
    risk = np.zeros(n)
    for name in seen:
        risk += RISK_WEIGHTS[name] * factors[name]
    return risk


def draw_survival(
    rng: np.random.Generator,
    log_hazard: np.ndarray,
    censoring: float = 0.4,
    median_days: float = 900.0,
    shape: float = 1.3,
) -> SurvivalDraw:
    """Weibull event times with hazard proportional to exp(log_hazard), uniform censoring.

    The censoring horizon is found by bisection so that exactly ``censoring`` of this draw is
    censored (rounded), which keeps the event rate in the 30-60% band for every seed.
    """
    n = log_hazard.size
    centred = log_hazard - np.median(log_hazard)
    u = rng.uniform(size=n)
    scale = median_days / np.log(2) ** (1 / shape)
    event_time = scale * (-np.log(u) * np.exp(-centred)) ** (1 / shape)
    event_time = np.maximum(np.round(event_time), 1.0)
    fraction = rng.uniform(size=n)
    target = int(round(censoring * n))

    def censored_count(horizon: float) -> int:
        return int(np.sum(np.maximum(np.round(fraction * horizon), 1.0) < event_time))

    lo, hi = 1.0, float(event_time.max()) * 50
    for _ in range(80):
        mid = (lo + hi) / 2
        if censored_count(mid) > target:
            lo = mid
        else:
            hi = mid
    censor_time = np.maximum(np.round(fraction * hi), 1.0)
    event = (event_time <= censor_time).astype(np.int8)
    time = np.where(event == 1, event_time, censor_time)
    return SurvivalDraw(time=time, event=event, event_time=event_time, censor_time=censor_time)


def harrell_c(risk: np.ndarray, time: np.ndarray, event: np.ndarray, chunk: int = 2048) -> float:
    """Harrell's C of ``risk`` (higher = earlier death), computed as scikit-survival does.

    A pair is comparable when the first patient died and the second was still at risk: a later
    time, or the same time but censored. Tied risks count one half. Written in numpy (in row
    chunks) so generating a cohort does not import scikit-survival.
    """
    risk = np.asarray(risk, dtype=np.float64)
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event).astype(bool)
    dead = np.flatnonzero(event)
    concordant = ties = comparable = 0.0
    for start in range(0, dead.size, chunk):
        i = dead[start:start + chunk]
        at_risk = (time[None, :] > time[i, None]) | ((time[None, :] == time[i, None]) & ~event[None, :])
        higher = risk[i, None] > risk[None, :]
        equal = risk[i, None] == risk[None, :]
        comparable += at_risk.sum()
        concordant += (at_risk & higher).sum()
        ties += (at_risk & equal).sum()
    if comparable == 0:
        raise ValueError("no comparable pairs: every patient is censored or times are all equal")
    return float((concordant + 0.5 * ties) / comparable)
