"""Survival math shared by every method: losses, heads, metrics and time bins.

``pmx.survival.losses`` and ``pmx.survival.heads`` import torch; ``pmx.survival.metrics`` and
``pmx.survival.bins`` only numpy / scikit-survival. Names are imported lazily so that
``import pmx.survival`` stays cheap. See docs/survival.md.
"""

from __future__ import annotations

from pmx.lazy import lazy_exports

_EXPORTS = {
    "cox_loss": "losses",
    "nll_discrete_loss": "losses",
    "logistic_hazard_loss": "losses",
    "SurvivalHead": "heads",
    "CoxHead": "heads",
    "CosineCoxHead": "heads",
    "DiscreteTimeHead": "heads",
    "LogisticHazardHead": "heads",
    "QuantileBins": "bins",
    "HazardCuts": "bins",
    "harrell_c": "metrics",
    "bootstrap_c_index": "metrics",
    "uno_c": "metrics",
    "antolini_c": "metrics",
    "cumulative_dynamic_auc": "metrics",
    "integrated_brier": "metrics",
    "survival_at": "metrics",
    "breslow_survival": "metrics",
    "evaluation_times": "metrics",
    "as_survival_arrays": "checks",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

