"""``pmx run plugin:contramae``: data stages, shared folds, per-fold selection, pretraining and
fine-tuning, the run report.

    cohort (--demo / --cohort) -> ingest -> representative regions (tiled into the store, read
    back as one uint8 bank on the run device) -> shared folds -> deseq2-rsf per fold (cached) ->
    per fold: pretrain -> fine-tune (early stopping on the validation split) -> test risks ->
    results.json / results.md / km.png / predictions.csv / lineage.json

The fold trainers write into the run directory (``fold<k>/pretrain``, ``fold<k>/finetune``:
``metrics.jsonl``, ``config.json``, weights), next to the results.

Under ``--gpus N`` (torchrun) every rank runs the data stages (the store's stage cache and locks
share the work), holds the whole bank on its own device and trains its shard of every batch; the
run id comes from rank 0 and only rank 0 writes the report.
"""

from __future__ import annotations

import logging
import time as clock
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import pmx

log = logging.getLogger("pmx.contramae")

__all__ = ["run_contramae"]


def run_contramae(method: Any, context: pmx.RunContext, *, progress: bool = True) -> Any:
    """The whole recipe; returns the ``Results`` written to ``<out_dir>/<run id>/results.json``."""
    from pmx.evaluation import fold_members
    from pmx.featurestore import open_store
    from pmx.recipes import demo_reference, ensure_logging, new_run_id, shared_folds, write_run
    from pmx.training.distributed import barrier, init_distributed

    from .bank import RegionBank
    from .crossval import run_fold
    from .data import load_cohort_data
    from .selection import select_omics

    config = method.config
    start = clock.perf_counter()
    ensure_logging()
    env, device = init_distributed(context.resolved_device())
    run_id = _shared(new_run_id(method.name, context.preset), env)
    run_dir = Path(context.out_dir) / run_id
    log.info("contramae %s (%s): run directory %s", context.preset, config.modalities, run_dir)
    data = load_cohort_data(context, config, progress=progress, device=device)
    lineage = data.lineage
    seconds: dict[str, float] = {"data": round(clock.perf_counter() - start, 2)}

    store = open_store(context.store)
    split = shared_folds(store, data.name, data.patients, data.time, data.event, folds=config.eval.folds,
                         val_fraction=config.eval.val_fraction, seed=context.seed, lineage=lineage)
    t0 = clock.perf_counter()
    if config.modalities != "pathology":
        selections = select_omics(store, data, split, config, force=context.force, progress=progress,
                                  lineage=lineage)
    else:
        selections = {}
        lineage["stages"]["select"] = "skipped (modalities=pathology)"
    seconds["select"] = round(clock.perf_counter() - t0, 2)

    bank = RegionBank(time=torch.as_tensor(data.time, dtype=torch.float64),
                      event=torch.as_tensor(data.event.astype("int64")),
                      images=data.images).to(device)
    lineage["bank"] = {"device": str(device), "patients": len(bank), "bytes": bank.nbytes(),
                       "images": list(bank.images.shape) if bank.images is not None else None}

    outcomes = []
    folds = sorted(split["fold"].unique().to_list())
    t0 = clock.perf_counter()
    for fold in folds:
        members = fold_members(split, fold)
        log.info("fold %d (%d of %d): %d train, %d val, %d test patients", fold, fold + 1, len(folds),
                 len(members["train"]), len(members["val"]), len(members["test"]))
        outcomes.append(run_fold(method, bank, data.patients, members, fold, selections.get(fold),
                                 run_dir=run_dir, seed=context.seed, device=device, progress=progress))
    seconds["train"] = round(clock.perf_counter() - t0, 2)

    lineage["region_slides"] = dict(zip(data.patients, data.region_slides)) if data.images is not None else None
    lineage["folds"] = [{"fold": o.fold, "test_c_index": round(o.c_index, 4), "pretrain": o.pretrain,
                         "finetune": o.finetune, "seconds": o.seconds} for o in outcomes]
    seconds["total"] = round(clock.perf_counter() - start, 2)
    lineage["seconds"] = seconds
    lineage["threads"] = config.runtime.threads or torch.get_num_threads()
    predictions = pd.concat([o.predictions for o in outcomes], ignore_index=True)
    if not env.is_main:
        barrier()
        return None
    results = write_run(context, method=method.name, cohort=data.name, config=config, predictions=predictions,
                        split=split, fold_metrics={o.fold: o.metrics for o in outcomes}, lineage=lineage,
                        reference=demo_reference(data.manifest), run_id=run_id)
    barrier()
    return results


def _shared(value: str, env: Any) -> str:
    """Rank 0's value on every rank (one run directory for all processes)."""
    if not env.is_distributed:
        return value
    box = [value if env.is_main else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return str(box[0])
