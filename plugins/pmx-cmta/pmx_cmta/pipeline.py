"""``pmx run plugin:cmta``: data stages, shared folds, per-fold training, the run report."""

from __future__ import annotations

import json
import logging
import time as clock
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import pmx

log = logging.getLogger("pmx.cmta")


def make_split(store_uri: str, data: Any, folds: int, val_fraction: float, seed: int) -> Any:
    """Patient-level folds stratified by event, saved in the store so other methods reuse them."""
    from pmx.evaluation import make_folds, save_folds
    from pmx.featurestore import open_store

    table = make_folds(data.patients, data.event, n_folds=folds, val_fraction=val_fraction, seed=seed,
                       time=data.time)
    save_folds(table, open_store(store_uri))
    return table


def run_cmta(method: Any, context: pmx.RunContext, *, progress: bool = True) -> Any:
    """The whole recipe; returns the ``Results`` written to ``<out_dir>/<run id>/results.json``."""
    from pmx.evaluation import fold_members, report_run

    from .crossval import run_fold
    from .data import load_cohort_data

    config = method.config
    start = clock.perf_counter()
    if not logging.getLogger().handlers and not log.handlers:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    data = load_cohort_data(context, config.data, progress=progress)
    data_seconds = clock.perf_counter() - start

    split = make_split(context.store, data, config.eval.folds, config.eval.val_fraction, context.seed)
    device = torch.device(context.resolved_device())
    outcomes = []
    for fold in sorted(split["fold"].unique().to_list()):
        members = fold_members(split, fold)
        outcomes.append(run_fold(data, members, fold, config, seed=context.seed, device=device,
                                 progress=progress))

    run_id = f"cmta-{context.preset}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S-%f')}"
    run_dir = Path(context.out_dir) / run_id
    predictions = pd.concat([o.predictions for o in outcomes], ignore_index=True)
    results = report_run(
        run_dir, method=method.name, cohort=data.name, preset=context.preset,
        config=config.model_dump(mode="json"), predictions=predictions, splits=split,
        fold_metrics={o.fold: o.metrics for o in outcomes}, run_id=run_id, seed=context.seed,
    )
    predictions.to_csv(run_dir / "predictions.csv", index=False)
    lineage = dict(data.lineage)
    lineage["folds"] = [{"fold": o.fold, "best_epoch": o.best_epoch, "val_c_index": o.val_c_index,
                         "train_loss": [round(x, 5) for x in o.train_loss], "omic_sizes": o.omic_sizes,
                         "seconds": round(o.seconds, 2)} for o in outcomes]
    lineage["seconds"] = {"data": round(data_seconds, 2), "total": round(clock.perf_counter() - start, 2)}
    (run_dir / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str) + "\n")
    log.info("cmta %s on %s: mean test C-index %.3f +/- %.3f over %d folds -> %s", context.preset, data.name,
             results.c_index_mean, results.c_index_std, len(outcomes), run_dir / "results.json")
    return results
