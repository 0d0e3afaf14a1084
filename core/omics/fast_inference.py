"""A PyDESeq2 ``Inference`` whose per-gene fits run for all genes at once.

PyDESeq2's ``DefaultInference`` loops over genes in Python (joblib) for every fit, and spends
most of its time in ``alpha_mle``: one scipy L-BFGS-B minimisation of the
negative-binomial log-likelihood (plus the Cox-Reid term, plus the log-normal prior for the MAP
step) per gene, twice per run. On 20,000 genes x 250 patients that is most of ten minutes on
two cores. The objective is one-dimensional in log(dispersion) and bounded, so it can be
minimised for every gene simultaneously with numpy: a coarse grid over the bounds picks each
gene's best bracket, then golden-section search narrows it to ``tol``. Same objective, same
bounds (PyDESeq2's own fallback for non-converged genes is a grid search too); the result is
the minimum over the whole bounded interval rather than the local one L-BFGS-B reaches from its
starting value, which is the same point whenever the profile likelihood is unimodal (tests
compare dispersions and p-values with ``DefaultInference``).

The other per-gene loops are vectorised without changing their arithmetic: the initial
linear-model means (``lin_reg_mu``: one least-squares solve for all genes), the IRLS fit of the
log fold changes (``irls``: the same iterations and stopping rule per gene, run as batched
p x p solves; genes that diverge go to PyDESeq2's own per-gene solver, whose fallback then
applies unchanged) and the two-sided Wald test (``wald_test``; one-sided or thresholded
alternatives use PyDESeq2's). Trend, prior and Cook's distances are PyDESeq2's code.
``DeseqDataSet(inference=...)`` is PyDESeq2's extension point for exactly this.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydeseq2 import utils as deseq_utils
from pydeseq2.default_inference import DefaultInference
from scipy.special import gammaln
from scipy.stats import norm

__all__ = ["VectorizedDispersionInference", "dispersion_loss", "nb_nll_columns"]

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def nb_nll_columns(counts: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """PyDESeq2's ``nb_nll`` for each column (gene) with its own dispersion."""
    inv = 1.0 / alpha[None, :]
    logbinom = gammaln(counts + inv) - gammaln(counts + 1.0) - gammaln(inv)
    return (inv * np.log(alpha[None, :]) - logbinom + (counts + inv) * np.log(inv + mu)
            - counts * np.log(mu)).sum(axis=0)


def dispersion_loss(log_alpha: np.ndarray, counts: np.ndarray, mu: np.ndarray, design: np.ndarray,
                    cr_reg: bool, prior: tuple[np.ndarray, float] | None) -> np.ndarray:
    """PyDESeq2's ``fit_alpha_mle`` objective for each gene (columns) at its own ``log_alpha``."""
    alpha = np.exp(log_alpha)[None, :]
    inv = 1.0 / alpha
    logbinom = gammaln(counts + inv) - gammaln(counts + 1.0) - gammaln(inv)
    nll = (inv * np.log(alpha) - logbinom + (counts + inv) * np.log(mu + inv) - counts * np.log(mu)).sum(axis=0)
    if cr_reg:
        weights = mu / (1.0 + mu * alpha)  # (n, G)
        fisher = np.einsum("ni,ng,nj->gij", design, weights, design)
        nll = nll + 0.5 * np.linalg.slogdet(fisher)[1]
    if prior is not None:
        log_alpha_hat, variance = prior
        nll = nll + (log_alpha - log_alpha_hat) ** 2 / (2.0 * variance)
    return nll


class VectorizedDispersionInference(DefaultInference):
    """``DefaultInference`` with ``alpha_mle`` solved for all genes at once (grid + golden section)."""

    def __init__(self, *args: Any, grid: int = 41, tol: float = 1e-7, chunk: int = 4_000_000,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grid = grid
        self.tol = tol
        self.chunk = chunk

    def alpha_mle(self, counts: np.ndarray, design_matrix: np.ndarray, mu: np.ndarray, alpha_hat: np.ndarray,
                  min_disp: float, max_disp: float, prior_disp_var: float | None = None, cr_reg: bool = True,
                  prior_reg: bool = False, optimizer: str = "L-BFGS-B") -> tuple[np.ndarray, np.ndarray]:
        if prior_reg and prior_disp_var is None:
            raise ValueError("Sigma_prior is required for prior regularization")
        counts = np.asarray(counts, dtype=np.float64)
        mu = np.asarray(mu, dtype=np.float64)
        design = np.asarray(design_matrix, dtype=np.float64)
        log_hat = np.log(np.asarray(alpha_hat, dtype=np.float64))
        n, genes = counts.shape
        out = np.empty(genes)
        workers = max(1, int(self.n_cpus))
        step = max(1, min(self.chunk // max(n, 1), -(-genes // workers)))

        def solve(start: int) -> None:
            cols = slice(start, start + step)
            prior = (log_hat[cols], float(prior_disp_var)) if prior_reg else None
            out[cols] = self._minimise(counts[:, cols], mu[:, cols], design, cr_reg, prior,
                                       np.log(min_disp), np.log(max_disp))

        starts = range(0, genes, step)
        if workers == 1 or len(starts) == 1:
            for start in starts:
                solve(start)
        else:
            # numpy and scipy.special ufuncs release the GIL on large arrays: threads scale
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(solve, starts))
        return np.exp(out), np.ones(genes, dtype=bool)

    def _minimise(self, counts: np.ndarray, mu: np.ndarray, design: np.ndarray, cr_reg: bool,
                  prior: tuple[np.ndarray, float] | None, low: float, high: float) -> np.ndarray:
        genes = counts.shape[1]

        def f(t: np.ndarray) -> np.ndarray:
            return dispersion_loss(t, counts, mu, design, cr_reg, prior)

        points = np.linspace(low, high, self.grid)
        values = np.stack([f(np.full(genes, p)) for p in points])  # (grid, G)
        values = np.where(np.isfinite(values), values, np.inf)
        best = np.argmin(values, axis=0)
        a = points[np.maximum(best - 1, 0)]
        b = points[np.minimum(best + 1, self.grid - 1)]
        # golden-section search inside each gene's bracket [a, b]
        c = b - _GOLDEN * (b - a)
        d = a + _GOLDEN * (b - a)
        fc, fd = f(c), f(d)
        while np.max(b - a) > self.tol:
            left = fc < fd  # minimum in [a, d]
            b = np.where(left, d, b)
            a = np.where(left, a, c)
            new_c = b - _GOLDEN * (b - a)
            new_d = a + _GOLDEN * (b - a)
            # reuse the surviving interior point; evaluate only the new one
            keep_c = np.where(left, new_c, d)
            keep_d = np.where(left, c, new_d)
            f_new = f(np.where(left, new_c, new_d))
            fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
            c, d = keep_c, keep_d
        t = (a + b) / 2.0
        # never worse than the best grid point (e.g. a minimum on the bound)
        grid_best = points[best]
        better = values[best, np.arange(genes)] < f(t)
        return np.where(better, grid_best, t)

    # -- the other per-gene loops ----------------------------------------------------------
    def lin_reg_mu(self, counts: np.ndarray, size_factors: np.ndarray, design_matrix: np.ndarray,
                   min_mu: float) -> np.ndarray:
        """Least-squares means of normalised counts for all genes at once (``fit_lin_mu``)."""
        sf = np.asarray(size_factors, dtype=np.float64)[:, None]
        design = np.asarray(design_matrix, dtype=np.float64)
        coef = np.linalg.lstsq(design, np.asarray(counts, dtype=np.float64) / sf, rcond=None)[0]
        return np.maximum(sf * (design @ coef), min_mu)

    def irls(self, counts: np.ndarray, size_factors: np.ndarray, design_matrix: np.ndarray,
             disp: np.ndarray, min_mu: float, beta_tol: float, min_beta: float = -30,
             max_beta: float = 30, optimizer: str = "L-BFGS-B", maxiter: int = 250,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``irls_solver``'s iterations for every gene at once; diverging genes use PyDESeq2's."""
        y = np.asarray(counts, dtype=np.float64)
        sf = np.asarray(size_factors, dtype=np.float64)
        X = np.asarray(design_matrix, dtype=np.float64)
        disp = np.asarray(disp, dtype=np.float64)
        n, genes = y.shape
        p = X.shape[1]
        ridge = np.eye(p) * 1e-6
        if np.linalg.matrix_rank(X) == p:
            q, r = np.linalg.qr(X)
            beta = np.linalg.solve(r, q.T @ np.log(y / sf[:, None] + 0.1))  # (p, G)
        else:
            beta = np.zeros((p, genes))
            with np.errstate(divide="ignore"):
                beta[0] = np.log(y / sf[:, None]).mean(axis=0)
        mu = np.maximum(sf[:, None] * np.exp(X @ beta), min_mu)
        dev = np.full(genes, 1000.0)
        active = np.ones(genes, dtype=bool)
        fallback = np.zeros(genes, dtype=bool)
        iteration = 0
        while active.any():
            idx = np.flatnonzero(active)
            m, d = mu[:, idx], disp[idx]
            w = m / (1.0 + m * d[None, :])
            z = np.log(m / sf[:, None]) + (y[:, idx] - m) / m
            hessian = np.einsum("ni,ng,nj->gij", X, w, X) + ridge
            rhs = np.einsum("ni,ng->gi", X, w * z)
            beta_hat = np.linalg.solve(hessian, rhs[:, :, None])[:, :, 0].T  # (p, active)
            iteration += 1
            diverged = (np.abs(beta_hat) > max_beta).any(axis=0) | (iteration >= maxiter)
            fallback[idx[diverged]] = True
            active[idx[diverged]] = False
            ok = idx[~diverged]
            beta[:, ok] = beta_hat[:, ~diverged]
            mu[:, ok] = np.maximum(sf[:, None] * np.exp(X @ beta[:, ok]), min_mu)
            old = dev[ok]
            dev[ok] = -2.0 * nb_nll_columns(y[:, ok], mu[:, ok], disp[ok])
            ratio = np.abs(dev[ok] - old) / (np.abs(dev[ok]) + 0.1)
            active[ok[ratio <= beta_tol]] = False
        converged = np.ones(genes, dtype=bool)
        w = mu / (1.0 + mu * disp[None, :])
        inverse = np.linalg.inv(np.einsum("ni,ng,nj->gij", X, w, X) + ridge)
        hat = np.einsum("ni,gij,nj->ng", X, inverse, X) * w
        mu_out = sf[:, None] * np.exp(X @ beta)
        for g in np.flatnonzero(fallback):
            b, m, h, c = deseq_utils.irls_solver(
                counts=y[:, g], size_factors=sf, design_matrix=X, disp=disp[g], min_mu=min_mu,
                beta_tol=beta_tol, min_beta=min_beta, max_beta=max_beta, optimizer=optimizer, maxiter=maxiter)
            beta[:, g], mu_out[:, g], hat[:, g], converged[g] = b, m, h, c
        return beta.T, mu_out, hat, converged

    def wald_test(self, design_matrix: np.ndarray, disp: np.ndarray, lfc: np.ndarray, mu: np.ndarray,
                  ridge_factor: np.ndarray, contrast: np.ndarray, lfc_null: Any,
                  alt_hypothesis: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Two-sided Wald test for all genes at once (``utils.wald_test`` with no alternative)."""
        if alt_hypothesis is not None:
            return super().wald_test(design_matrix, disp, lfc, mu, ridge_factor, contrast, lfc_null,
                                     alt_hypothesis)
        X = np.asarray(design_matrix, dtype=np.float64)
        mu = np.asarray(mu, dtype=np.float64)
        w = mu / (1.0 + mu * np.asarray(disp, dtype=np.float64)[None, :])
        fisher = np.einsum("ni,ng,nj->gij", X, w, X)
        h = np.linalg.inv(fisher + ridge_factor)
        contrast = np.asarray(contrast, dtype=np.float64)
        hc = np.einsum("gij,j->gi", h, contrast)
        se = np.sqrt(np.einsum("gi,gij,gj->g", hc, fisher, hc))
        stat = (np.asarray(lfc, dtype=np.float64) - lfc_null) @ contrast / se
        return 2.0 * norm.sf(np.abs(stat)), stat, se
