"""Feature filters shared by the selectors: missing values, imputation, zero variance.

All of them are fit on the training rows only and return what they keep, so applying them to
other patients later is a column selection (plus, for KNN imputation, a transform with the
imputer fit on training rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.impute import KNNImputer

from ..errors import DataError

__all__ = ["check_no_empty", "features_without_missing", "FittedKNNImputer", "nonzero_variance"]


def _preview(items: list[str], n: int = 5) -> str:
    shown = ", ".join(map(str, items[:n]))
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def check_no_empty(kind: str, matrix: pd.DataFrame) -> None:
    """All-NaN features or patients mean a parsing problem upstream: refuse them.

    Silently dropping them would hide a broken file (a wrong separator or orientation gives
    whole columns of NaN) and would make the output width depend on which rows are present.
    """
    missing = matrix.isna().to_numpy()
    empty_cols = matrix.columns[missing.all(axis=0)].tolist()
    if empty_cols:
        raise DataError(
            f"omics '{kind}': {len(empty_cols)} feature(s) have no value for any training patient "
            f"({_preview(empty_cols)}). Drop these columns before selection, or check how the file "
            "was read (separator, orientation, header)"
        )
    empty_rows = matrix.index[missing.all(axis=1)].tolist()
    if empty_rows:
        raise DataError(
            f"omics '{kind}': patient(s) {_preview(empty_rows)} have no '{kind}' values at all. "
            f"Remove them from the '{kind}' matrix (a patient may lack a modality) or fix their file"
        )


def features_without_missing(matrix: pd.DataFrame) -> list[str]:
    """Features with a value for every training patient (RNA-seq and miRNA: 'Rem')."""
    return matrix.columns[~matrix.isna().any(axis=0).to_numpy()].tolist()


class FittedKNNImputer:
    """KNN imputation (methylation: 'Kim') fit on training patients, applied to anyone.

    sklearn's KNNImputer drops all-NaN columns on its own; check_no_empty refuses those first
    so the output columns always equal the input columns.
    """

    def __init__(self, n_neighbors: int = 5) -> None:
        self.n_neighbors = n_neighbors
        self.columns_: list[str] = []
        self._imputer: KNNImputer | None = None

    def fit(self, matrix: pd.DataFrame) -> "FittedKNNImputer":
        self.columns_ = list(matrix.columns)
        neighbours = max(1, min(self.n_neighbors, len(matrix) - 1))
        self._imputer = KNNImputer(n_neighbors=neighbours, keep_empty_features=True)
        self._imputer.fit(matrix.to_numpy(dtype=np.float64))
        return self

    def transform(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """Fill gaps from the nearest training patients (rows without gaps pass unchanged)."""
        matrix = matrix[self.columns_]
        if self._imputer is None or not matrix.isna().to_numpy().any():
            return matrix
        filled = self._imputer.transform(matrix.to_numpy(dtype=np.float64))
        return pd.DataFrame(filled, index=matrix.index, columns=self.columns_)


def nonzero_variance(matrix: pd.DataFrame, min_variance: float = 0.0) -> list[str]:
    """Features whose training variance exceeds ``min_variance`` ('Var'; 0 = drop constants)."""
    variance = np.nanvar(matrix.to_numpy(dtype=np.float64), axis=0)
    keep = variance > min_variance
    return matrix.columns[keep].tolist()
