"""Per-fold omics selection: ``deseq2-rsf`` fit on each fold's training part, cached in the store.

The selector sees only the fold's ``train`` patients (not its validation split, not its test
fold), transforms every patient, and ``pmx.omics.select_folds`` stores each fold's vectors
under the fold's selection key (stage ``select``): a rerun on the same store is a cache hit per
fold. The result per fold is one ``[N, n_omics, top_k]`` float32 array, rows in the cohort's
patient order and omics types in ``data.omics_types`` order (the token order).
"""

from __future__ import annotations

import logging
import time as clock
from typing import Any

import numpy as np
import pandas as pd

import pmx
from pmx.errors import ConfigError, DataError

from .data import CohortData

log = logging.getLogger("pmx.contramae")

__all__ = ["build_selector", "select_omics"]


def build_selector(data: Any) -> Any:
    """The configured selector with ``top_k = data.top_k`` and ``data.selector_options``."""
    options = dict(data.selector_options)
    if "top_k" in options and options["top_k"] != data.top_k:
        raise ConfigError("set the number of features with data.top_k (= model.omics_dim), "
                          "not data.selector_options.top_k")
    options["top_k"] = data.top_k
    try:
        return pmx.get_registry().create("selector", data.selector, **options)
    except KeyError as exc:
        raise ConfigError(f"contramae: data.selector={data.selector!r} is not a registered selector "
                          "(`pmx components --kind selector`)") from exc


def select_omics(store: Any, data: CohortData, split: Any, config: Any, *, force: bool = False,
                 progress: bool = True, lineage: dict[str, Any] | None = None) -> dict[int, np.ndarray]:
    """fold -> ``[N, n_omics, top_k]`` vectors of every patient, fit on that fold's training part."""
    from pmx.omics.folds import select_folds

    types = list(config.data.omics_types)
    selector = build_selector(config.data)
    survival = pd.DataFrame({"time": data.time, "event": data.event.astype(int)}, index=data.patients)
    started = clock.perf_counter()
    results = select_folds(selector, {m: data.omics[m] for m in types}, survival, split, store=store,
                           force=force, parts=("train",), progress=progress)
    out: dict[int, np.ndarray] = {}
    for result in results:
        stacked = []
        for modality in types:
            frame = result.vectors.get(modality)
            if frame is None:
                raise DataError(f"fold {result.fold}: selector {selector.name} returned no {modality} vectors")
            if frame.shape[1] != config.data.top_k:
                raise DataError(f"fold {result.fold}: {modality} has {frame.shape[1]} selected features, not "
                                f"data.top_k={config.data.top_k}; enable the selector's zero padding (pad=true)")
            stacked.append(frame.reindex(data.patients).to_numpy(np.float32))
        block = np.stack(stacked, axis=1)
        if not np.isfinite(block).all():
            bad = [data.patients[i] for i in np.flatnonzero(~np.isfinite(block).all(axis=(1, 2)))[:3]]
            raise DataError(f"fold {result.fold}: selected omics vectors are missing for patient(s) {', '.join(bad)}")
        out[result.fold] = block
    cached = sum(r.cached for r in results)
    seconds = round(clock.perf_counter() - started, 2)
    if lineage is not None:
        lineage.setdefault("stages", {})["select"] = {
            "selector": selector.name, "fingerprint": selector.fingerprint, "top_k": config.data.top_k,
            "folds": {r.fold: {"key": r.key, "cached": r.cached, "n_train": len(r.train_patients),
                               "seconds": r.seconds} for r in results},
            "cached": cached, "seconds": seconds,
        }
    log.info("stage select (%s, top %d of %s per fold, fit on each training part): %s, %.1f s",
             selector.name, config.data.top_k, "/".join(types),
             "cache hit" if cached == len(results) else f"{len(results) - cached} fold(s) computed, {cached} cached",
             seconds)
    return out
