"""MCAT/PORPOISE-style cohort tables (Chen et al.): one row per slide with survival and genomics.

Columns: ``case_id`` (patient), ``slide_id`` (slide file name), ``survival_months``,
``censorship`` (1 = censored, i.e. the opposite of an event), optional ``site``/``oncotree_code``,
and gene columns whose suffix names the modality: ``_rnaseq`` (rna), ``_cnv`` (cnv),
``_mut`` (mutation). Feature names are the gene symbols without the suffix.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pmx.errors import DataError

from ..validation import ValidationReport
from .clinical import DAYS_PER, parse_events, survival_frame
from .common import read_table, to_numeric_strict

__all__ = ["read_mcat_table", "mcat_clinical", "mcat_slides", "mcat_omics", "MCAT_SUFFIXES"]

MCAT_SUFFIXES = {"_rnaseq": "rna", "_cnv": "cnv", "_mut": "mutation"}
_TIME_COLUMNS = ("survival_months", "survival_months_dss", "survival_months_pfi")


def read_mcat_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    frame = read_table(path)
    frame = frame.loc[:, [c for c in frame.columns if not str(c).startswith("Unnamed")]]
    if "case_id" not in frame.columns:
        raise DataError(f"{path} is not an MCAT/PORPOISE table: it has no case_id column")
    frame.attrs["source"] = str(path)
    return frame


def mcat_clinical(frame: pd.DataFrame, report: ValidationReport, cohort: str | None = None) -> pd.DataFrame:
    """Survival per case (rows of one case repeat the same values: the first row is kept)."""
    source = frame.attrs.get("source", "MCAT table")
    missing = [c for c in ("survival_months", "censorship") if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: MCAT tables need {', '.join(missing)} (1 = censored in censorship)")
    cases = frame.drop_duplicates("case_id", keep="first")
    ids = cases["case_id"].astype(str)
    months = pd.to_numeric(cases["survival_months"], errors="coerce")
    bad = cases["survival_months"].notna() & months.isna()
    if bad.any():
        report.error("non-numeric", f"{source}: survival_months that are not numbers", patients=ids[bad], files=[source])
    event = parse_events(cases["censorship"], f"{source} column censorship", report, ids, meaning="censored")
    site = cases["site"] if "site" in cases.columns else None
    cohort_values = cohort or (cases["oncotree_code"] if "oncotree_code" in cases.columns else None)
    return survival_frame(ids, months * DAYS_PER["months"], event, site=site, cohort=cohort_values, source=source)


def mcat_slides(frame: pd.DataFrame) -> pd.DataFrame:
    """case_id/slide_id pairs (slide_id is a file name such as ``TCGA-...-DX1.<uuid>.svs``)."""
    source = frame.attrs.get("source", "MCAT table")
    if "slide_id" not in frame.columns:
        raise DataError(f"{source}: MCAT slides need a slide_id column")
    pairs = frame[["case_id", "slide_id"]].dropna().drop_duplicates()
    return pairs.rename(columns={"case_id": "patient_id", "slide_id": "file"}).reset_index(drop=True)


def mcat_omics(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Modality -> cases x genes frame, from the suffixed gene columns."""
    source = frame.attrs.get("source", "MCAT table")
    cases = frame.drop_duplicates("case_id", keep="first").set_index("case_id")
    cases.index = cases.index.astype(str)
    out: dict[str, pd.DataFrame] = {}
    for suffix, modality in MCAT_SUFFIXES.items():
        columns = [c for c in cases.columns if str(c).endswith(suffix)]
        if not columns:
            continue
        block = to_numeric_strict(cases[columns], f"{source} ({modality} columns)")
        block.columns = [str(c)[: -len(suffix)] for c in columns]
        out[modality] = block
    if not out:
        raise DataError(f"{source}: no genomic columns (names ending in _rnaseq, _cnv or _mut)")
    return out
