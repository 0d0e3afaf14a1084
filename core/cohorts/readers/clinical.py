"""Survival tables other than GDC's: plain tables and TCGA-CDR (Liu et al. 2018) tables.

Every clinical reader returns the same frame: ``patient_id``, ``time`` (days), ``event``
(1 = death, 0 = censored, NaN = unknown), ``site``, ``cohort`` and optional ``clinical`` (JSON
of other fields). Problems that concern single patients are left for the validation step, so
the report can list all of them at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pmx.errors import DataError

from ..barcodes import parse_barcode, patient_of
from ..validation import ValidationReport
from .common import read_table

__all__ = ["read_clinical_table", "read_tcga_cdr", "parse_events", "DAYS_PER", "survival_frame"]

DAYS_PER = {"days": 1.0, "months": 30.4375, "years": 365.25}
_DEATH = {"1", "1.0", "dead", "deceased", "1:deceased", "death", "true", "yes", "died"}
_ALIVE = {"0", "0.0", "alive", "living", "0:living", "censored", "false", "no", "live"}


def parse_events(values: pd.Series, where: str, report: ValidationReport, ids: pd.Series,
                 meaning: str = "death") -> pd.Series:
    """1/0, Dead/Alive, 1:DECEASED/0:LIVING, True/False -> 1.0/0.0 (NaN when missing).

    With ``meaning="censored"`` (MCAT's ``censorship``) the code is flipped. Unknown texts are
    an error that lists the patients.
    """
    text = values.astype(str).str.strip().str.lower()
    event = pd.Series(np.nan, index=values.index)
    event[text.isin(_DEATH)] = 1.0
    event[text.isin(_ALIVE)] = 0.0
    unknown = values.notna() & event.isna()
    if unknown.any():
        examples = sorted(set(values[unknown].astype(str)))[:5]
        report.error("bad-event", f"{where}: event values that are not 1/0, Dead/Alive or 1:DECEASED/0:LIVING "
                     f"(e.g. {', '.join(repr(e) for e in examples)})", patients=ids[unknown])
    if meaning == "censored":
        event = 1.0 - event
    return event


def survival_frame(ids: pd.Series, time: pd.Series, event: pd.Series, *, site: pd.Series | None = None,
                   cohort: pd.Series | str | None = None, clinical: pd.Series | None = None,
                   source: str = "") -> pd.DataFrame:
    patient = ids.astype(str).str.strip().map(patient_of)
    if site is None:
        site = pd.Series([b.tss if (b := parse_barcode(p)) else None for p in patient], index=ids.index)
    frame = pd.DataFrame({
        "patient_id": patient.to_numpy(),
        "time": time.to_numpy(dtype=float),
        "event": event.to_numpy(dtype=float),
        "site": site.to_numpy() if site is not None else None,
        "cohort": cohort.to_numpy() if isinstance(cohort, pd.Series) else cohort,
    })
    if clinical is not None:
        frame["clinical"] = clinical.to_numpy()
    frame = frame[frame["patient_id"].ne("nan") & frame["patient_id"].ne("")]
    frame.attrs["source"] = source
    return frame.reset_index(drop=True)


def _numeric_time(values: pd.Series, where: str, report: ValidationReport, ids: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if bad.any():
        report.error("non-numeric", f"{where}: survival times that are not numbers "
                     f"(e.g. {', '.join(repr(v) for v in values[bad].astype(str).unique()[:5])})", patients=ids[bad])
    return numbers


def _require(frame: pd.DataFrame, path: Path, columns: list[str], hint: str) -> None:
    missing = [c for c in columns if c and c not in frame.columns]
    if missing:
        raise DataError(f"{path} has no column(s) {', '.join(missing)} (columns: "
                        f"{', '.join(map(str, frame.columns[:12]))}{' ...' if frame.shape[1] > 12 else ''}); {hint}")


def read_clinical_table(path: str | Path, report: ValidationReport, *, id_column: str = "patient_id",
                        time_column: str = "time", event_column: str = "event", event_meaning: str = "death",
                        time_unit: str = "days", site_column: str | None = None,
                        cohort_column: str | None = None, cohort: str | None = None) -> pd.DataFrame:
    """A plain CSV/TSV/Parquet survival table with configurable column names and time unit."""
    path = Path(path)
    frame = read_table(path)
    _require(frame, path, [id_column, time_column, event_column, site_column or "", cohort_column or ""],
             "set id_column/time_column/event_column in the manifest's [clinical] section")
    ids = frame[id_column].astype(str)
    time = _numeric_time(frame[time_column], f"{path} column {time_column}", report, ids) * DAYS_PER[time_unit]
    event = parse_events(frame[event_column], f"{path} column {event_column}", report, ids, event_meaning)
    return survival_frame(ids, time, event, site=frame[site_column] if site_column else None,
                          cohort=cohort or (frame[cohort_column] if cohort_column else None), source=str(path))


def read_tcga_cdr(path: str | Path, report: ValidationReport, *, endpoint: str = "OS",
                  cohort: str | None = None) -> pd.DataFrame:
    """TCGA Pan-Cancer Clinical Data Resource: ``bcr_patient_barcode``, ``OS``/``OS.time`` (days).

    DSS, DFI and PFI work the same way (``endpoint``); ``type`` (cancer type) becomes the
    cohort as ``TCGA-<type>``. The original is an Excel file: export its first sheet to CSV/TSV.
    """
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xls"):
        try:
            frame = pd.read_excel(path, dtype=str)
        except ImportError:
            raise DataError(f"{path}: reading Excel needs openpyxl; export the sheet to CSV/TSV "
                            "or `pip install openpyxl`") from None
    else:
        frame = read_table(path)
    frame = frame.loc[:, [c for c in frame.columns if not str(c).startswith("Unnamed")]]
    _require(frame, path, ["bcr_patient_barcode", endpoint, f"{endpoint}.time"],
             "is this a TCGA-CDR table (TCGA-CDR-SupplementalTableS1)?")
    ids = frame["bcr_patient_barcode"].astype(str)
    time = _numeric_time(frame[f"{endpoint}.time"], f"{path} column {endpoint}.time", report, ids)
    event = parse_events(frame[endpoint], f"{path} column {endpoint}", report, ids)
    kind = frame["type"].map(lambda t: f"TCGA-{t}" if isinstance(t, str) else None) if "type" in frame else None
    return survival_frame(ids, time, event, cohort=cohort or kind, source=str(path))
