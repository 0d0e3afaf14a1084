"""Omics matrices: CSV/TSV/Parquet in either orientation, cBioPortal-style tables, AnnData.

Every reader returns a samples x features float frame (index: sample or patient IDs as given,
columns: feature names). Orientation ``auto`` decides which axis holds the samples by counting
labels that are TCGA barcodes or known patient IDs on each axis, and asks for an explicit
``orientation`` when it cannot tell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Collection

import numpy as np
import pandas as pd

from pmx.errors import DataError

from ..barcodes import is_tcga_barcode, patient_of
from .common import read_table, short_list, to_numeric_strict

__all__ = ["read_matrix", "read_h5ad", "orient", "ANNOTATION_COLUMNS"]

#: non-value columns of cBioPortal and similar gene tables (kept out of the numbers)
ANNOTATION_COLUMNS = ("Hugo_Symbol", "Entrez_Gene_Id", "Composite.Element.REF", "Cytoband", "Gene_Symbol",
                      "gene_id", "gene_name", "gene_type", "Gene", "ID_REF")


def _id_score(labels: Collection[object], known: Collection[str]) -> int:
    known_set = set(known)
    score = 0
    for label in labels:
        text = str(label)
        if is_tcga_barcode(text) or text in known_set or patient_of(text) in known_set:
            score += 1
    return score


def orient(frame: pd.DataFrame, orientation: str, known_ids: Collection[str], path: Path) -> str:
    """'samples-x-features' or 'features-x-samples' for a frame whose first column is labels."""
    if orientation != "auto":
        return orientation
    rows = _id_score(frame.index, known_ids)
    cols = _id_score(frame.columns, known_ids)
    if rows == cols:
        raise DataError(f"{path}: cannot tell whether samples are rows or columns (IDs matching the clinical "
                        f"table or TCGA barcodes: {rows} row labels, {cols} column labels); set "
                        "orientation = \"samples-x-features\" or \"features-x-samples\" in the manifest")
    return "samples-x-features" if rows > cols else "features-x-samples"


def _label_frame(raw: pd.DataFrame, id_column: str | None, path: Path) -> pd.DataFrame:
    """Use the ID column (given, annotation-aware, or the first) as the index."""
    if id_column is not None:
        if id_column not in raw.columns:
            raise DataError(f"{path} has no column {id_column!r} (id_column in the manifest); columns start "
                            f"{short_list(raw.columns, 8)}")
        label = id_column
    else:
        present = [c for c in ANNOTATION_COLUMNS if c in raw.columns]
        label = present[0] if present else raw.columns[0]
    annotations = [c for c in raw.columns if c in ANNOTATION_COLUMNS and c != label]
    frame = raw.drop(columns=annotations)
    labels = frame[label]
    if label == "Hugo_Symbol" and "Entrez_Gene_Id" in raw.columns:  # cBioPortal: empty symbols
        labels = labels.fillna(raw["Entrez_Gene_Id"].map(lambda e: f"ENTREZ:{e}" if pd.notna(e) else None))
    frame = frame.drop(columns=[label])
    frame.index = pd.Index(labels.astype(str).str.strip(), name=None)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame[frame.index != "nan"]
    return frame


def read_matrix(path: str | Path, *, orientation: str = "auto", id_column: str | None = None,
                known_ids: Collection[str] = ()) -> pd.DataFrame:
    """A CSV/TSV/Parquet matrix (or cBioPortal data file) as samples x features floats.

    Rows sharing a feature name (e.g. a gene symbol listed twice in cBioPortal files) are
    averaged, since their values measure the same thing.
    """
    path = Path(path)
    raw = read_table(path)
    if raw.shape[1] < 2:
        raise DataError(f"{path} has a single column; a matrix needs an ID column and value columns")
    frame = _label_frame(raw, id_column, path)
    direction = orient(frame, orientation, known_ids, path)
    values = to_numeric_strict(frame, str(path))
    if direction == "features-x-samples":
        values = values.T
    if not values.columns.is_unique:
        values = values.T.groupby(level=0, sort=False).mean().T
    if not values.index.is_unique:
        dup = values.index[values.index.duplicated()].unique()
        raise DataError(f"{path}: sample ID(s) listed twice: {short_list(dup)}; remove the duplicates")
    return values


def read_h5ad(path: str | Path, *, id_column: str | None = None) -> pd.DataFrame:
    """AnnData ``.h5ad``: observations are samples (obs_names or ``obs[id_column]``), variables features."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; fix the path in the manifest")
    try:
        import anndata
    except ImportError:  # pragma: no cover - anndata comes with pydeseq2
        raise DataError("reading .h5ad needs the anndata package: pip install anndata") from None
    try:
        adata = anndata.read_h5ad(path)
    except Exception as exc:
        raise DataError(f"{path} is not a readable AnnData file: {exc}") from None
    matrix = adata.X
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    matrix = np.asarray(matrix, dtype=np.float64)
    if id_column is not None:
        if id_column not in adata.obs.columns:
            raise DataError(f"{path}: obs has no column {id_column!r}; obs columns: {short_list(adata.obs.columns, 8)}")
        ids = adata.obs[id_column].astype(str).to_numpy()
    else:
        ids = adata.obs_names.astype(str).to_numpy()
    frame = pd.DataFrame(matrix, index=ids, columns=adata.var_names.astype(str))
    if np.isinf(matrix).any():
        raise DataError(f"{path}: infinite values in X; replace them with numbers or NaN")
    if not frame.index.is_unique:
        raise DataError(f"{path}: sample ID(s) listed twice: {short_list(frame.index[frame.index.duplicated()])}")
    return frame
