"""Pieces every method recipe's ``run()`` shares: the cohort (``--demo`` or ``--cohort``), the
ingest stage, the store-shared cross-validation folds and the run directory.

They live here, not in a plugin, so two methods run on one cohort and one store reuse the same
demo cohort, ingested rows and folds, and each run's log names what was a cache hit. A plugin's
``run()`` reads like::

    manifest = resolve_manifest(context, config.demo, method=self.name)
    ingested = ingest_stage(context, manifest, store, lineage)
    ...                                   # method-specific stages (tiles, embeddings, regions)
    split = shared_folds(store, ingested.cohort.name, ids, time, event, folds=5, val_fraction=0.15,
                         seed=context.seed, lineage=lineage)
    ...                                   # per fold: fit on members["train"], select on "val"
    results = write_run(context, method=self.name, cohort=..., config=..., predictions=..., ...)
"""

from __future__ import annotations

from .cohort import DemoSection, demo_folder, demo_reference, resolve_manifest
from .folds import shared_folds
from .logs import ensure_logging
from .report import new_run_id, write_run
from .stages import ingest_stage

__all__ = [
    "DemoSection",
    "demo_folder",
    "demo_reference",
    "ensure_logging",
    "ingest_stage",
    "new_run_id",
    "resolve_manifest",
    "shared_folds",
    "write_run",
]
