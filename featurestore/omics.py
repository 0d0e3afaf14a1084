"""Omics matrices in and out of the store.

A matrix (patients x features) is stored as one ``values`` vector per patient in ``omics`` and
its feature names once in ``omics_features``, keyed by (modality, source, fold): source is
``raw`` for ingested values (fold -1) or a selector's fingerprint for its output on one fold.
Storing names once keeps a 60,000-gene RNA matrix from repeating 60,000 strings per patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pyarrow as pa

from pmx.errors import DataError

from .store import sql_and, sql_in, sql_literal

if TYPE_CHECKING:
    from .store import FeatureStore

RAW = "raw"


@dataclass
class OmicsMatrix:
    """Patients x features values with their names (rows follow ``patient_ids``)."""

    patient_ids: list[str]
    values: np.ndarray
    features: list[str]
    modality: str
    source: str = RAW
    fold: int = -1
    groups: list[str] | None = None

    def to_polars(self) -> Any:
        import polars as pl

        frame = pl.DataFrame(self.values, schema=self.features, orient="row")
        return frame.insert_column(0, pl.Series("patient_id", self.patient_ids))


def _where(modality: str, source: str, fold: int) -> str:
    return (f"modality = {sql_literal(modality)} AND source = {sql_literal(source)} "
            f"AND fold = {int(fold)}")


def write_omics(store: "FeatureStore", patient_ids: Sequence[str], values: Any,
                features: Sequence[str], *, modality: str, source: str = RAW, fold: int = -1,
                groups: Sequence[str] | None = None) -> int:
    """Store a (patients x features) matrix; returns the number of patient rows written.

    Writing the same (modality, source, fold) again updates those patients. If the feature
    list changed, the old vectors no longer line up with the names, so all rows of that
    (modality, source, fold) are replaced.
    """
    matrix = np.asarray(values, dtype=np.float32)
    patient_ids = [str(p) for p in patient_ids]
    features = [str(f) for f in features]
    if matrix.ndim != 2 or matrix.shape != (len(patient_ids), len(features)):
        raise DataError(f"omics {modality}/{source}: values of shape {matrix.shape} do not match "
                        f"{len(patient_ids)} patient(s) x {len(features)} feature(s)")
    if len(set(features)) != len(features):
        raise DataError(f"omics {modality}/{source}: feature names are not unique")
    if len(set(patient_ids)) != len(patient_ids):
        raise DataError(f"omics {modality}/{source}: patient ids are not unique")
    if groups is not None and len(groups) != len(features):
        raise DataError(f"omics {modality}/{source}: {len(groups)} groups for {len(features)} features")
    where = _where(modality, source, fold)
    stored = store.read_arrow("omics_features", where=where, columns=["features"])
    changed = stored.num_rows and stored.column("features")[0].as_py() != features
    store.upsert("omics_features", [{"modality": modality, "source": source, "fold": fold,
                                      "features": features,
                                      "groups": list(groups) if groups is not None else None}])
    flat = pa.array(matrix.reshape(-1))
    offsets = pa.array(np.arange(len(patient_ids) + 1, dtype=np.int64) * matrix.shape[1], pa.int32())
    rows = pa.table({
        "patient_id": pa.array(patient_ids, pa.string()),
        "modality": pa.array([modality] * len(patient_ids), pa.string()),
        "source": pa.array([source] * len(patient_ids), pa.string()),
        "fold": pa.array([fold] * len(patient_ids), pa.int32()),
        "values": pa.ListArray.from_arrays(offsets, flat),
    })
    if changed:
        return store.replace("omics", rows, where)
    return store.upsert("omics", rows)


def read_omics(store: "FeatureStore", *, modality: str, source: str = RAW, fold: int = -1,
               patient_ids: Sequence[str] | None = None) -> OmicsMatrix:
    """The stored matrix; rows in ``patient_ids`` order when given (missing ones are an error)."""
    where = _where(modality, source, fold)
    names = store.read_arrow("omics_features", where=where, columns=["features", "groups"])
    if not names.num_rows:
        raise DataError(f"the store has no omics for modality {modality!r}, source {source!r}, "
                        f"fold {fold}; ingest or select it first")
    features = names.column("features")[0].as_py()
    groups = names.column("groups")[0].as_py()
    filter_ = where if patient_ids is None else sql_and(where, sql_in("patient_id", patient_ids))
    table = store.read_arrow("omics", where=filter_, columns=["patient_id", "values"])
    ids = table.column("patient_id").to_pylist()
    width = len(features)
    values = (table.column("values").combine_chunks().flatten().to_numpy(zero_copy_only=False)
              .reshape(len(ids), width).astype(np.float32, copy=False))
    if patient_ids is not None:
        position = {p: i for i, p in enumerate(ids)}
        missing = [p for p in patient_ids if p not in position]
        if missing:
            raise DataError(f"omics {modality}/{source} fold {fold} has no values for patient(s) "
                            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        order = [position[p] for p in patient_ids]
        values, ids = values[order], list(patient_ids)
    else:
        order = np.argsort(ids, kind="stable")
        values, ids = values[order], [ids[i] for i in order]
    return OmicsMatrix(ids, values, features, modality, source, fold, groups)
