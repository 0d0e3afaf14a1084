"""The in-memory cohort: what a manifest resolves to before it is written to the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .validation import ValidationReport

__all__ = ["OmicsData", "Cohort", "PATIENT_COLUMNS", "SLIDE_COLUMNS"]

PATIENT_COLUMNS = ["patient_id", "time", "event", "site", "cohort", "clinical"]
SLIDE_COLUMNS = ["slide_id", "patient_id", "path", "vendor", "mpp", "magnification", "width", "height",
                 "fingerprint"]


@dataclass
class OmicsData:
    """One modality after linking: one row per patient (the sample the duplicate rule kept)."""

    modality: str
    kind: str  # counts | beta | continuous | binary
    patients: list[str]
    samples: list[str]
    features: list[str]
    values: np.ndarray  # float32 (patients x features), NaN = missing
    files: list[str]

    def subset(self, keep: set[str]) -> "OmicsData":
        rows = [i for i, p in enumerate(self.patients) if p in keep]
        return OmicsData(self.modality, self.kind, [self.patients[i] for i in rows],
                         [self.samples[i] for i in rows], self.features, self.values[rows],
                         [self.files[i] for i in rows])

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=self.patients, columns=self.features)


@dataclass
class Cohort:
    """Patients with survival (time in days, event 1 = death), their slides and omics."""

    name: str
    patients: pd.DataFrame
    slides: pd.DataFrame
    omics: dict[str, OmicsData] = field(default_factory=dict)
    report: ValidationReport = field(default_factory=ValidationReport)

    @property
    def patient_ids(self) -> list[str]:
        return self.patients["patient_id"].tolist()

    def availability(self) -> dict[str, set[str]]:
        """Modality ('slide', 'rna', ...) -> patients that have it."""
        out: dict[str, set[str]] = {}
        if len(self.slides):
            out["slide"] = set(self.slides["patient_id"])
        for modality, data in self.omics.items():
            out[modality] = set(data.patients)
        return out

    def summary(self) -> dict[str, Any]:
        from .info import summarise

        return summarise(self.name, self.patients, self.availability(),
                         n_slides=len(self.slides),
                         features={m: len(d.features) for m, d in self.omics.items()})
