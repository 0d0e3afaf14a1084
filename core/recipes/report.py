"""The run directory: results.json / results.md / km.png (``pmx.evaluation.report_run``), plus
predictions.csv and lineage.json, under ``<out_dir>/<method>-<preset>-<UTC time>``."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger("pmx.run")


def new_run_id(method: str, preset: str) -> str:
    return f"{method}-{preset}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S-%f')}"


def write_run(context: Any, *, method: str, cohort: str, config: Any, predictions: Any, split: Any,
              fold_metrics: Mapping[int, Mapping[str, float | None]], lineage: Mapping[str, Any],
              reference: Mapping[str, float] | None = None, run_id: str | None = None) -> Any:
    """Write every output of a cross-validated run and log the headline; returns ``Results``.

    ``run_id``: pass one from :func:`new_run_id` made at the start when the run writes into its
    directory before the end (per-fold trainer records); default: a new one."""
    from pmx.evaluation import report_run

    run_id = run_id or new_run_id(method, context.preset)
    run_dir = Path(context.out_dir) / run_id
    results = report_run(run_dir, method=method, cohort=cohort, preset=context.preset,
                         config=config.model_dump(mode="json") if hasattr(config, "model_dump") else config,
                         predictions=predictions, splits=split, fold_metrics=fold_metrics, run_id=run_id,
                         seed=context.seed, reference=reference)
    predictions.to_csv(run_dir / "predictions.csv", index=False)
    (run_dir / "lineage.json").write_text(json.dumps(dict(lineage), indent=2, default=str) + "\n")
    ceiling = ""
    if reference and "oracle_c_index" in reference:
        ceiling = f" (demo oracle {reference['oracle_c_index']:.3f})"
    log.info("%s %s on %s: mean test C-index %.3f +/- %.3f over %d folds%s -> %s", method, context.preset,
             cohort, results.c_index_mean, results.c_index_std, len(results.folds), ceiling,
             run_dir / "results.json")
    return results
