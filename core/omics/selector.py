"""Base class of omics selectors: the sklearn-like contract and the fold cache key.

A selector is fit on the training patients of one fold (``fit(omics, survival)``: the rows of
each matrix whose patient is in ``survival``) and then transforms any patient
(``transform(omics)``) into one vector per output group (an omics type, or a gene family),
with the names of the kept features in ``selected_features_``. Nothing about the patients
being transformed is used, so a test patient's values can never change what was selected.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Iterable, Mapping

import pandas as pd

from ..components import Component, fingerprint_of
from ..errors import PmxError
from .data import as_survival_frame, check_matrices, digest_rows

__all__ = ["OmicsSelector", "NotFittedError"]

log = logging.getLogger("pmx.omics")


class NotFittedError(PmxError):
    """``transform`` was called before ``fit``."""


class OmicsSelector(Component):
    """Omics selector base (kind ``selector``): fit on a training fold, transform anyone."""

    kind: ClassVar[str] = "selector"

    #: after fit: output group -> names of its features, in output order
    selected_features_: dict[str, list[str]]
    #: after fit: output group -> small JSON-able summary of what each step kept (for reports)
    report_: dict[str, dict[str, Any]]

    def fit(self, omics: Mapping[str, pd.DataFrame], survival: Any) -> "OmicsSelector":
        matrices = check_matrices(omics)
        frame = as_survival_frame(survival)
        self.__dict__.pop("selected_features_", None)  # a failed fit leaves the selector unfitted
        selected: dict[str, list[str]] = {}
        self.report_ = {}
        self.train_patients_ = sorted(frame.index)
        self._selected = selected
        self._fit(matrices, frame)
        self.selected_features_ = selected
        return self

    def transform(self, omics: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """Patients x selected features per output group (patients of each matrix, in order)."""
        if not hasattr(self, "selected_features_"):
            raise NotFittedError(f"selector {self.name!r} is not fitted; call fit() on a training fold first")
        return self._transform(check_matrices(omics))

    def fit_transform(self, omics: Mapping[str, pd.DataFrame], survival: Any) -> dict[str, pd.DataFrame]:
        return self.fit(omics, survival).transform(omics)

    # -- for subclasses ------------------------------------------------------------------------
    def _fit(self, omics: dict[str, pd.DataFrame], survival: pd.DataFrame) -> None:
        """Fit on training rows; record each output group's names in ``self._selected``."""
        raise NotImplementedError

    def _transform(self, omics: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        raise NotImplementedError

    # -- cache key -----------------------------------------------------------------------------
    def selection_fingerprint(self, train_patients: Iterable[str],
                              omics: Mapping[str, pd.DataFrame] | None = None) -> str:
        """Key of one fold's selection: selector fingerprint + training patients (+ their data).

        With ``omics`` the training rows' content is hashed in too, so re-ingested values
        invalidate the cached selection even when the patients are the same.
        """
        train = sorted(str(p) for p in train_patients)
        payload: dict[str, Any] = {"selector": self.fingerprint, "train_patients": train}
        if omics is not None:
            matrices = check_matrices(omics)
            payload["data"] = digest_rows(
                {k: m.loc[m.index.isin(train)].sort_index() for k, m in matrices.items()}
            )
        return fingerprint_of(payload)
