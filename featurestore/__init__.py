"""LanceDB feature store: tables, stage cache and training readers.

    from pmx.featurestore import open_store
    store = open_store()                      # $PMX_STORE or ./.pmx/store
    store.upsert("patients", rows)            # keyed: reruns never duplicate
    df = store.read("slides", where="patient_id = 'TCGA-XX-0001'")
    with store.stage("embed", fingerprint=fp, units=slide_ids) as stage:
        for slide in stage.pending(): ...; stage.done(slide, rows=n)

Torch readers (`BagDataset`, `BagLoader`, `TileDataset`, `OmicsDataset`, `RankSharder`) live in
submodules (`datasets`, `bagloader`, `sharding`) and are imported on first use, so importing
the store stays light.
"""

from __future__ import annotations

from typing import Any

from . import schemas
from .schemas import SCHEMA_VERSION, TABLES
from .stage import Stage, stage_key
from .store import FeatureStore, open_store, sql_in, sql_literal

_LAZY = {
    "BagDataset": "datasets", "TileDataset": "datasets", "OmicsDataset": "datasets",
    "collate_bags": "datasets", "loader_kwargs": "datasets", "BagLoader": "bagloader",
    "RankSharder": "sharding", "ShardedBatchSampler": "sharding", "shard_indices": "sharding",
    "import_bags": "interop", "export_bags": "interop", "import_h5": "interop",
    "export_h5": "interop", "import_pt": "interop", "export_pt": "interop",
    "write_omics": "omics", "read_omics": "omics", "OmicsMatrix": "omics",
}

__all__ = ["FeatureStore", "SCHEMA_VERSION", "Stage", "TABLES", "open_store", "schemas",
           "sql_in", "sql_literal", "stage_key", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
