"""Readers of NCI GDC files: STAR gene counts, miRNA quantification, methylation betas,
the clinical table and the sample sheet that links downloaded file names to barcodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pmx.errors import DataError

from ..barcodes import parse_barcode, patient_of
from ..validation import ValidationReport
from .common import MISSING_TOKENS, parse_floats, read_lines, read_table, short_list

__all__ = [
    "read_star_counts",
    "read_mirna_quantification",
    "read_methylation_beta",
    "read_sample_sheet",
    "read_gdc_clinical",
    "STAR_VALUE_COLUMNS",
    "MIRNA_VALUE_COLUMNS",
]

STAR_VALUE_COLUMNS = ("unstranded", "stranded_first", "stranded_second", "tpm_unstranded",
                      "fpkm_unstranded", "fpkm_uq_unstranded")
MIRNA_VALUE_COLUMNS = ("read_count", "reads_per_million_miRNA_mapped")


def _rows(path: Path, what: str, header: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and tab-split rows of a small per-sample file, skipping leading '#' lines."""
    lines = read_lines(path)
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        start += 1
    body = [line.split("\t") for line in lines[start:] if line.strip()]
    if header:
        if not body:
            raise DataError(f"{path} is empty; expected a {what} file")
        return body[0], body[1:]
    return [], body


def _column_values(path: Path, header: list[str], rows: list[list[str]], name: str) -> list[str]:
    index = header.index(name)
    try:
        return [row[index] for row in rows]
    except IndexError:
        short = next(n for n, row in enumerate(rows) if len(row) <= index)
        raise DataError(f"{path}: line {short + 2} has {len(rows[short])} column(s), the header has "
                        f"{len(header)}; the file is truncated or not tab-separated") from None


def _unique_sum(values: np.ndarray, labels: list[str]) -> pd.Series:
    series = pd.Series(values, index=pd.Index(labels, dtype=object))
    if not series.index.is_unique:
        series = series.groupby(level=0, sort=False).sum(min_count=1)
    return series


def read_star_counts(path: str | Path, value: str = "unstranded", feature: str = "gene_name") -> pd.Series:
    """One sample's values from a GDC ``*.augmented_star_gene_counts.tsv``.

    Skips the ``# gene-model`` comment line and the ``N_unmapped``/``N_multimapping``/
    ``N_noFeature``/``N_ambiguous`` summary rows. With ``feature="gene_name"`` genes sharing a
    symbol (e.g. PAR_Y copies) are summed, so every feature name is unique.
    """
    path = Path(path)
    if value not in STAR_VALUE_COLUMNS:
        raise DataError(f"STAR counts value {value!r} is not a column of GDC STAR files; "
                        f"use one of {', '.join(STAR_VALUE_COLUMNS)}")
    header, rows = _rows(path, "GDC STAR gene counts")
    needed = {"gene_id", "gene_name", value}
    if not needed <= set(header):
        raise DataError(f"{path} is not a GDC augmented STAR gene counts file: it lacks column(s) "
                        f"{', '.join(sorted(needed - set(header)))} (columns: {', '.join(header[:9])})")
    rows = [row for row in rows if not row[0].startswith("N_")]
    ids = [row[0] for row in rows]
    if feature == "gene_name":
        names = _column_values(path, header, rows, "gene_name")
        labels = [name or gene for name, gene in zip(names, ids)]
    else:
        labels = ids
    tokens = _column_values(path, header, rows, value)
    return _unique_sum(parse_floats(tokens, f"{path} column {value}", labels), labels)


def read_mirna_quantification(path: str | Path, value: str = "read_count") -> pd.Series:
    """One sample from a GDC ``*.mirbase21.mirnas.quantification.txt`` (indexed by miRNA_ID)."""
    path = Path(path)
    if value not in MIRNA_VALUE_COLUMNS:
        raise DataError(f"miRNA value {value!r} is not a column of GDC miRNA quantification files; "
                        f"use one of {', '.join(MIRNA_VALUE_COLUMNS)}")
    header, rows = _rows(path, "GDC miRNA quantification")
    needed = {"miRNA_ID", value}
    if not needed <= set(header):
        raise DataError(f"{path} is not a GDC miRNA quantification file: it lacks column(s) "
                        f"{', '.join(sorted(needed - set(header)))} (isoform files are not supported; "
                        "use the *.mirnas.quantification.txt files)")
    labels = _column_values(path, header, rows, "miRNA_ID")
    tokens = _column_values(path, header, rows, value)
    return _unique_sum(parse_floats(tokens, f"{path} column {value}", labels), labels)


def read_methylation_beta(path: str | Path) -> pd.Series:
    """One sample's beta values: GDC level-3 files (probe, beta; no header; NA = missing).

    The older TCGA legacy layout with a ``Composite Element REF``/``Beta_value`` header is
    accepted too.
    """
    path = Path(path)
    _, rows = _rows(path, "methylation beta", header=False)
    if not rows:
        raise DataError(f"{path} is empty; expected probe and beta columns")
    column = 1
    if len(rows[0]) < 2:
        raise DataError(f"{path} is not a methylation beta file: expected two tab-separated columns "
                        "(probe, beta) and found one")
    if not _is_number_or_missing(rows[0][1]):  # a header row (legacy layout)
        header = rows[0]
        rows = rows[1:]
        column = header.index("Beta_value") if "Beta_value" in header else 1
    labels = [row[0] for row in rows]
    tokens = [row[column] if len(row) > column else "" for row in rows]
    values = pd.Series(parse_floats(tokens, f"{path} (beta values)", labels), index=pd.Index(labels, dtype=object))
    if not values.index.is_unique:
        dup = values.index[values.index.duplicated()].unique()
        raise DataError(f"{path}: probe(s) listed twice: {short_list(dup)}")
    return values


def _is_number_or_missing(text: str) -> bool:
    if text is None or text.strip() in MISSING_TOKENS:
        return True
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_sample_sheet(path: str | Path) -> pd.DataFrame:
    """GDC sample sheet -> columns file_name, file_id, case_id, sample_id, sample_type.

    Cells listing several cases or samples (multi-sample files) keep the first entry.
    """
    path = Path(path)
    frame = read_table(path, comment=None)
    columns = {"File Name": "file_name", "File ID": "file_id", "Case ID": "case_id", "Sample ID": "sample_id",
               "Sample Type": "sample_type"}
    missing = [c for c in ("File Name", "Sample ID") if c not in frame.columns]
    if missing:
        raise DataError(f"{path} is not a GDC sample sheet: it lacks column(s) {', '.join(missing)} "
                        "(download it from the GDC cart as 'Sample Sheet')")
    out = frame[[c for c in columns if c in frame.columns]].rename(columns=columns)
    for column in ("case_id", "sample_id", "sample_type"):
        if column in out:
            out[column] = out[column].astype(str).str.split(",").str[0].str.strip()
    return out


# ---- clinical -----------------------------------------------------------------------------

def _column(frame: pd.DataFrame, *names: str) -> pd.Series | None:
    """First column whose name, or whose name after the last '.', is one of ``names``."""
    for name in names:
        if name in frame.columns:
            return frame[name]
    for column in frame.columns:
        if str(column).rsplit(".", 1)[-1] in names:
            return frame[column]
    return None


def _number(series: pd.Series | None, index: pd.Index) -> pd.Series:
    if series is None:
        return pd.Series(np.nan, index=index)
    return pd.to_numeric(series, errors="coerce")


def read_gdc_clinical(path: str | Path, report: ValidationReport, cohort: str | None = None) -> pd.DataFrame:
    """Survival from a GDC ``clinical.tsv`` (legacy columns or the dotted 2024 layout).

    A case has several rows (one per treatment, diagnosis or follow-up): it is dead if any row
    says so; time is ``days_to_death`` for the dead and the largest follow-up day
    (``days_to_last_follow_up``/``days_to_follow_up``) for the living. ``'--`` is missing.
    """
    path = Path(path)
    frame = read_table(path, comment=None)
    ids = _column(frame, "case_submitter_id", "submitter_id")
    vital = _column(frame, "vital_status")
    if ids is None or vital is None:
        raise DataError(f"{path} is not a GDC clinical table: it needs case_submitter_id (or cases.submitter_id) "
                        "and vital_status (or demographic.vital_status) columns")
    death = _number(_column(frame, "days_to_death"), frame.index)
    follow = pd.concat([_number(_column(frame, "days_to_last_follow_up"), frame.index),
                        _number(_column(frame, "days_to_follow_up"), frame.index)], axis=1).max(axis=1)
    project = _column(frame, "project_id")
    rows = pd.DataFrame({
        "patient_id": ids.astype(str).map(patient_of),
        "dead": vital.astype(str).str.strip().str.lower().eq("dead"),
        "known": vital.notna() & ~vital.astype(str).str.strip().str.lower().isin(["not reported", "unknown", "nan"]),
        "death": death,
        "follow": follow,
        "project": project.astype(str) if project is not None else cohort,
    })
    grouped = rows.groupby("patient_id", sort=False)
    deaths = grouped["death"].agg(lambda s: sorted(set(s.dropna())))
    conflicting = [p for p, values in deaths.items() if len(values) > 1]
    if conflicting:
        report.warning("conflicting-survival", f"{path}: cases with different days_to_death in different rows; "
                       "the largest is used", patients=conflicting, files=[str(path)])
    out = pd.DataFrame({
        "dead": grouped["dead"].any(),
        "known": grouped["known"].any(),
        "death": grouped["death"].max(),
        "follow": grouped["follow"].max(),
        "cohort": grouped["project"].first(),
    })
    time = np.where(out["dead"], out["death"], out["follow"])
    event = np.where(out["known"], out["dead"].astype(float), np.nan)
    result = pd.DataFrame({"patient_id": out.index.astype(str), "time": time, "event": event,
                           "cohort": cohort or out["cohort"]}).reset_index(drop=True)
    if cohort:
        result["cohort"] = cohort
    result["site"] = [b.tss if (b := parse_barcode(p)) else None for p in result["patient_id"]]
    extra_columns = [c for c in ("age_at_index", "gender", "ajcc_pathologic_stage", "primary_diagnosis")
                     if _column(frame, c) is not None]
    if extra_columns:
        extras = pd.DataFrame({c: _column(frame, c) for c in extra_columns})
        extras["patient_id"] = rows["patient_id"]
        first = extras.groupby("patient_id", sort=False).first()
        result["clinical"] = [json.dumps({k: v for k, v in first.loc[p].items() if pd.notna(v)}) if p in first.index
                              else None for p in result["patient_id"]]
    result.attrs["source"] = str(path)
    return result
