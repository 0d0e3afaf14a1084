"""Survival math shared by every method: losses, heads, metrics and time bins.

``pmx.survival.losses`` and ``pmx.survival.heads`` import torch; ``pmx.survival.metrics`` and
``pmx.survival.bins`` only numpy / scikit-survival. Names are imported lazily so that
``import pmx.survival`` stays cheap. See docs/survival.md.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pmx.survival' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
