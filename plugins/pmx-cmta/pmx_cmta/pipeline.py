"""``pmx run plugin:cmta``: data stages, shared folds, per-fold training, the run report."""

from __future__ import annotations

import logging
import time as clock
from typing import Any

import pandas as pd
import torch

import pmx

log = logging.getLogger("pmx.cmta")


def run_cmta(method: Any, context: pmx.RunContext, *, progress: bool = True) -> Any:
    """The whole recipe; returns the ``Results`` written to ``<out_dir>/<run id>/results.json``."""
    from pmx.evaluation import fold_members
    from pmx.featurestore import open_store
    from pmx.recipes import demo_reference, ensure_logging, shared_folds, write_run

    from .crossval import run_fold
    from .data import load_cohort_data

    config = method.config
    start = clock.perf_counter()
    ensure_logging()
    data = load_cohort_data(context, config.data, config.demo, progress=progress)
    data_seconds = clock.perf_counter() - start

    split = shared_folds(open_store(context.store), data.name, data.patients, data.time, data.event,
                         folds=config.eval.folds, val_fraction=config.eval.val_fraction, seed=context.seed,
                         lineage=data.lineage)
    device = torch.device(context.resolved_device())
    outcomes = []
    for fold in sorted(split["fold"].unique().to_list()):
        members = fold_members(split, fold)
        outcomes.append(run_fold(data, members, fold, config, seed=context.seed, device=device,
                                 progress=progress))

    lineage = dict(data.lineage)
    lineage["folds"] = [{"fold": o.fold, "best_epoch": o.best_epoch, "val_c_index": o.val_c_index,
                         "train_loss": [round(x, 5) for x in o.train_loss], "omic_sizes": o.omic_sizes,
                         "seconds": round(o.seconds, 2)} for o in outcomes]
    lineage["seconds"] = {"data": round(data_seconds, 2), "total": round(clock.perf_counter() - start, 2)}
    predictions = pd.concat([o.predictions for o in outcomes], ignore_index=True)
    return write_run(context, method=method.name, cohort=data.name, config=config, predictions=predictions,
                     split=split, fold_metrics={o.fold: o.metrics for o in outcomes}, lineage=lineage,
                     reference=demo_reference(data.manifest))
