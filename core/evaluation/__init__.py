"""Leak-free evaluation: cross-validation splits, scoring, KM plots and run reports.

Names are imported lazily so ``import pmx.evaluation`` stays cheap. See docs/results.md for
the results.json schema and docs/survival.md for the protocol.
"""

from __future__ import annotations

from pmx.lazy import lazy_exports

_EXPORTS = {
    "PARTS": "splits",
    "tissue_source_site": "splits",
    "make_folds": "splits",
    "folds_from_table": "splits",
    "fold_members": "splits",
    "save_folds": "splits",
    "load_folds": "splits",
    "median_split": "km",
    "logrank_p": "km",
    "km_curves": "km",
    "plot_km": "km",
    "SCHEMA_VERSION": "results",
    "FoldResult": "results",
    "Results": "results",
    "build_results": "results",
    "write_results": "results",
    "load_results": "results",
    "results_markdown": "results",
    "versions": "results",
    "read_predictions": "scoring",
    "evaluate_predictions": "scoring",
    "report_run": "scoring",
    "fold_metrics": "scoring",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

