"""Small synthetic omics cohorts with planted survival genes (tests and ``bench/omics_bench.py``).

Survival follows a latent risk ``z``; a known subset of features ("planted") shifts with ``z``
and everything else is noise, so a selector's recovery of the planted set can be compared
with chance. RNA-seq and miRNA are negative-binomial counts with a realistic spread of
expression levels (many barely expressed genes, as in GDC STAR files) and per-patient library
sizes; methylation is beta values with a few missing entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SyntheticOmics", "make_synthetic_omics"]


@dataclass
class SyntheticOmics:
    omics: dict[str, pd.DataFrame]
    survival: pd.DataFrame
    planted: dict[str, list[str]]
    risk: pd.Series


def _counts(rng: np.random.Generator, z: np.ndarray, n_features: int, n_planted: int,
            effect: float, prefix: str, library: np.ndarray,
            unexpressed: float = 0.0) -> tuple[pd.DataFrame, list[str]]:
    log_mu = rng.normal(2.5, 2.2, size=n_features)
    # GDC STAR files list ~60,000 genes of which a large share is barely or never expressed
    silent = rng.random(n_features) < unexpressed
    log_mu[silent] = rng.normal(-3.0, 1.5, size=int(silent.sum()))
    # planted genes among the reasonably expressed ones (a planted gene with 0.1 reads is unfindable)
    expressed = np.flatnonzero(log_mu > np.log(30))
    if expressed.size < n_planted:
        log_mu[: n_planted] = rng.normal(5.0, 1.0, size=n_planted)
        expressed = np.arange(n_features)
    planted = np.sort(rng.choice(expressed, size=n_planted, replace=False))
    sign = rng.choice([-1.0, 1.0], size=n_planted)
    log_m = np.broadcast_to(log_mu, (len(z), n_features)).copy()
    log_m[:, planted] += effect * sign[None, :] * z[:, None]
    mean = np.exp(log_m) * library[:, None]
    dispersion = 0.05 + 1.0 / np.maximum(np.exp(log_mu), 1e-3)
    r = 1.0 / dispersion
    counts = rng.negative_binomial(r[None, :], r[None, :] / (r[None, :] + mean))
    names = [f"{prefix}{i:05d}" for i in range(n_features)]
    return pd.DataFrame(counts, columns=names), [names[i] for i in planted]


def make_synthetic_omics(n_patients: int = 80, n_genes: int = 300, n_mirna: int = 0,
                         n_methylation: int = 0, n_planted: int = 10, effect: float = 0.8,
                         censoring: float = 0.4, missing_methylation: float = 0.01,
                         unexpressed: float = 0.0, seed: int = 0) -> SyntheticOmics:
    """A cohort of ``n_patients`` with rna (and optionally mirna, methylation) matrices.

    ``unexpressed``: share of RNA-seq genes with (near-)zero counts, as in whole-transcriptome files.
    """
    rng = np.random.default_rng(seed)
    ids = [f"P{i:04d}" for i in range(n_patients)]
    z = rng.normal(size=n_patients)
    event_time = rng.exponential(1000.0 * np.exp(-z))
    # censoring times tuned so roughly `censoring` of the patients are censored
    censor_time = rng.exponential(1000.0 * (1.0 - censoring) / max(censoring, 1e-3), size=n_patients)
    time = np.maximum(np.minimum(event_time, censor_time), 1.0).round()
    event = event_time <= censor_time
    survival = pd.DataFrame({"time": time, "event": event}, index=ids)

    library = np.exp(rng.normal(0.0, 0.25, size=n_patients))
    omics: dict[str, pd.DataFrame] = {}
    planted: dict[str, list[str]] = {}
    rna, planted["rna"] = _counts(rng, z, n_genes, n_planted, effect, "GENE", library, unexpressed)
    omics["rna"] = rna.set_axis(ids, axis=0)
    if n_mirna:
        mir, planted["mirna"] = _counts(rng, z, n_mirna, n_planted, effect, "MIR", library)
        omics["mirna"] = mir.set_axis(ids, axis=0)
    if n_methylation:
        base = rng.normal(0.0, 2.0, size=n_methylation)
        chosen = np.sort(rng.choice(n_methylation, size=n_planted, replace=False))
        logit = base[None, :] + rng.normal(0.0, 0.5, size=(n_patients, n_methylation))
        logit[:, chosen] += effect * rng.choice([-1.0, 1.0], size=n_planted)[None, :] * z[:, None]
        beta = 1.0 / (1.0 + np.exp(-logit))
        beta[rng.random(beta.shape) < missing_methylation] = np.nan
        names = [f"cg{i:08d}" for i in range(n_methylation)]
        omics["methylation"] = pd.DataFrame(beta, index=ids, columns=names)
        planted["methylation"] = [names[i] for i in chosen]
    return SyntheticOmics(omics, survival, planted, pd.Series(z, index=ids, name="risk"))
