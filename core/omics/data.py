"""The inputs every selector takes: omics matrices per type and a survival table.

Selectors receive ``{omics type: DataFrame}`` (patients x features, index = patient IDs,
columns = feature names) and a survival DataFrame indexed by patient ID with ``time`` and
``event`` columns. Types have canonical names so that a matrix called ``"mRNA"`` or
``"rnaseq"`` is treated as RNA-seq counts everywhere; checking the inputs here once lets the
selectors fail with a message naming the omics type, the patient and the fix.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = [
    "OMICS_ALIASES",
    "canonical_type",
    "check_matrices",
    "as_survival_frame",
    "training_rows",
    "require_features",
    "digest_rows",
]

#: alias (lower case) -> canonical omics type
OMICS_ALIASES: dict[str, str] = {
    "rna": "rna", "rnaseq": "rna", "rna-seq": "rna", "rna_seq": "rna", "mrna": "rna",
    "expression": "rna", "gene_expression": "rna",
    "mirna": "mirna", "mir": "mirna", "microrna": "mirna", "mirna-seq": "mirna",
    "methylation": "methylation", "meth": "methylation", "dnam": "methylation",
    "dna_methylation": "methylation", "beta": "methylation",
    "cnv": "cnv", "cna": "cnv", "copy_number": "cnv",
    "mut": "mutation", "mutation": "mutation", "mutations": "mutation", "snv": "mutation",
}


def canonical_type(name: str) -> str:
    """Canonical name of an omics type; unknown names are kept (lower-cased) as their own type."""
    key = str(name).strip().lower()
    return OMICS_ALIASES.get(key, key)


def _check_one(kind: str, matrix: Any) -> pd.DataFrame:
    if not isinstance(matrix, pd.DataFrame):
        raise DataError(
            f"omics '{kind}' must be a pandas DataFrame (patients x features, index = patient IDs); "
            f"got {type(matrix).__name__}"
        )
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise DataError(f"omics '{kind}' is empty (shape {matrix.shape}); give at least one patient and feature")
    if matrix.index.has_duplicates:
        dup = matrix.index[matrix.index.duplicated()][0]
        raise DataError(f"omics '{kind}' has patient {dup!r} more than once; keep one row per patient")
    if matrix.columns.has_duplicates:
        dup = matrix.columns[matrix.columns.duplicated()][0]
        raise DataError(f"omics '{kind}' has feature {dup!r} more than once; feature names must be unique")
    try:
        values = matrix.astype(np.float64)
    except (TypeError, ValueError):
        bad = [c for c in matrix.columns if not pd.api.types.is_numeric_dtype(matrix[c])][:3]
        raise DataError(
            f"omics '{kind}' has non-numeric values in feature(s) {bad}; convert them to numbers "
            "or drop those columns"
        ) from None
    values.index = values.index.astype(str)
    values.columns = values.columns.astype(str)
    return values


def check_matrices(omics: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Validate and canonicalise ``{type: matrix}``: float64 values, string IDs and names."""
    if not isinstance(omics, Mapping) or not omics:
        raise DataError("no omics given: pass {omics type: patients x features DataFrame}")
    checked: dict[str, pd.DataFrame] = {}
    for name, matrix in omics.items():
        kind = canonical_type(name)
        if kind in checked:
            raise DataError(f"omics types {list(omics)} name '{kind}' twice; give one matrix per type")
        checked[kind] = _check_one(kind, matrix)
    return checked


def as_survival_frame(survival: Any, ids: Iterable[Any] | None = None) -> pd.DataFrame:
    """A survival DataFrame (index = patient ID, float ``time``, bool ``event``), validated.

    Accepts a DataFrame with ``time``/``event`` columns (the index, or a ``patient_id`` column,
    naming the patients), or a scikit-survival structured array plus ``ids``.
    """
    if isinstance(survival, pd.DataFrame):
        frame = survival
        if "patient_id" in frame.columns:
            frame = frame.set_index("patient_id")
        missing = {"time", "event"} - set(frame.columns)
        if missing:
            raise DataError(
                f"survival table lacks column(s) {sorted(missing)}; it needs 'time' and 'event' "
                "(1 = death observed) indexed by patient ID"
            )
        frame = frame[["time", "event"]].copy()
    elif isinstance(survival, np.ndarray) and survival.dtype.names:
        if ids is None:
            raise DataError("a structured survival array needs the patient IDs (ids=...) in the same order")
        names = survival.dtype.names
        event_field = next((n for n in names if survival.dtype[n] == np.bool_), names[0])
        time_field = next(n for n in names if n != event_field)
        frame = pd.DataFrame({"time": survival[time_field], "event": survival[event_field]},
                             index=list(ids))
    else:
        raise DataError(
            "survival must be a DataFrame with 'time' and 'event' columns indexed by patient ID "
            f"(or a scikit-survival structured array with ids); got {type(survival).__name__}"
        )
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()][0]
        raise DataError(f"survival table has patient {dup!r} more than once")
    time = pd.to_numeric(frame["time"], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(time) | (time <= 0))
    if bad.size:
        pid = frame.index[bad[0]]
        raise DataError(
            f"survival time of patient {pid!r} is {frame['time'].iloc[bad[0]]}; times must be "
            f"finite and > 0 ({bad.size} patient(s) affected). Drop them or fix their follow-up"
        )
    raw_event = frame["event"]
    event = pd.to_numeric(raw_event.astype(object).map(
        lambda v: {True: 1, False: 0}.get(v, v) if isinstance(v, (bool, np.bool_)) else v),
        errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isin(event, (0.0, 1.0)))
    if bad.size:
        pid = frame.index[bad[0]]
        raise DataError(
            f"survival event of patient {pid!r} is {raw_event.iloc[bad[0]]}; events must be 0/1 "
            "(1 = death observed, 0 = censored)"
        )
    return pd.DataFrame({"time": time, "event": event.astype(bool)}, index=frame.index)


def training_rows(kind: str, matrix: pd.DataFrame, survival: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``matrix`` for the patients of ``survival`` (the training patients), in its order.

    Rows of other patients are ignored, so passing a full cohort matrix with a training-only
    survival table can never leak test patients into a fit.
    """
    present = survival.index[survival.index.isin(matrix.index)]
    if len(present) == 0:
        raise DataError(
            f"none of the {len(survival)} training patients has '{kind}' values (e.g. "
            f"{list(survival.index[:2])} vs matrix rows {list(matrix.index[:2])}); check that the "
            "patient IDs match (TCGA: first 12 barcode characters)"
        )
    return matrix.loc[present]


def require_features(matrix: pd.DataFrame, needed: Sequence[Any], what: str) -> pd.DataFrame:
    """``matrix[needed]``, or a DataError naming the missing features: a fitted selector can
    only transform matrices that have the features it was fit with (``what`` names the input,
    e.g. "omics 'rna'")."""
    absent = [c for c in needed if c not in matrix.columns]
    if absent:
        raise DataError(
            f"{what}: {len(absent)} feature(s) the selector was fit with are missing "
            f"(e.g. {absent[:3]}); transform matrices with the training features"
        )
    return matrix[list(needed)]


def digest_rows(matrices: Mapping[str, pd.DataFrame]) -> str:
    """Content hash of matrices (names, patients, values): part of a fold's cache key."""
    h = hashlib.sha256()
    for kind in sorted(matrices):
        m = matrices[kind]
        h.update(kind.encode())
        h.update("\x1f".join(map(str, m.index)).encode())
        h.update("\x1f".join(map(str, m.columns)).encode())
        h.update(np.ascontiguousarray(m.to_numpy(dtype=np.float64)).tobytes())
    return h.hexdigest()[:16]
