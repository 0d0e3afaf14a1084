"""cBioPortal study folders (e.g. ``brca_tcga_pan_can_atlas_2018/``).

- ``data_clinical_patient.txt``: ``PATIENT_ID``, ``OS_MONTHS``, ``OS_STATUS`` (``1:DECEASED`` /
  ``0:LIVING``); the four ``#`` lines at the top are metadata and skipped.
- ``data_clinical_sample.txt`` (optional): ``SAMPLE_ID`` -> ``PATIENT_ID`` for non-TCGA IDs.
- Data matrices: ``Hugo_Symbol`` (and ``Entrez_Gene_Id``) rows, one column per sample. Files are
  matched to modalities by name (first match wins): see ``DATA_FILES``. Z-score files are skipped.
- ``data_mutations*.txt`` (MAF): a binary gene x sample matrix of non-silent mutations over the
  samples that appear in the file.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np
import pandas as pd

from pmx.errors import DataError

from ..validation import ValidationReport
from .clinical import DAYS_PER, parse_events, survival_frame
from .common import read_table
from .matrix import read_matrix

__all__ = ["read_cbioportal_clinical", "cbioportal_data_files", "read_cbioportal_mutations",
           "cbioportal_sample_patients", "DATA_FILES"]

#: modality -> file name patterns, in order of preference
DATA_FILES: dict[str, tuple[str, ...]] = {
    "rna": ("data_mrna_seq_v2_rsem.txt", "data_RNA_Seq_v2_expression_median.txt", "data_mrna_seq*.txt",
            "data_RNA_Seq*.txt", "data_expression*.txt"),
    "mirna": ("data_mirna*.txt", "data_microrna*.txt"),
    "methylation": ("data_methylation_hm450.txt", "data_methylation*.txt"),
    "cnv": ("data_log2_cna.txt", "data_linear_cna.txt", "data_cna.txt", "data_CNA.txt"),
    "protein": ("data_rppa.txt", "data_protein*.txt"),
    "mutation": ("data_mutations*.txt",),
}
_SILENT = {"Silent", "Intron", "3'UTR", "5'UTR", "3'Flank", "5'Flank", "IGR", "RNA"}


def _study_dir(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; cBioPortal sources point at the study folder")
    return path


def read_cbioportal_clinical(path: str | Path, report: ValidationReport, cohort: str | None = None) -> pd.DataFrame:
    folder = _study_dir(Path(path))
    file = folder / "data_clinical_patient.txt"
    if not file.exists():
        raise DataError(f"{folder} has no data_clinical_patient.txt (the cBioPortal patient table)")
    frame = read_table(file)
    missing = [c for c in ("PATIENT_ID", "OS_MONTHS", "OS_STATUS") if c not in frame.columns]
    if missing:
        raise DataError(f"{file} lacks column(s) {', '.join(missing)}; overall survival is read from "
                        "OS_MONTHS and OS_STATUS")
    ids = frame["PATIENT_ID"].astype(str)
    months = pd.to_numeric(frame["OS_MONTHS"], errors="coerce")
    bad = frame["OS_MONTHS"].notna() & months.isna()
    if bad.any():
        report.error("non-numeric", f"{file}: OS_MONTHS values that are not numbers", patients=ids[bad], files=[file])
    event = parse_events(frame["OS_STATUS"], f"{file} column OS_STATUS", report, ids)
    study = cohort or _study_id(folder)
    return survival_frame(ids, months * DAYS_PER["months"], event, cohort=study, source=str(file))


def _study_id(folder: Path) -> str:
    meta = folder / "meta_study.txt"
    if meta.exists():
        for line in meta.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "cancer_study_identifier" and value.strip():
                return value.strip()
    return folder.name


def cbioportal_sample_patients(path: str | Path) -> dict[str, str]:
    """SAMPLE_ID -> PATIENT_ID from data_clinical_sample.txt (empty when the file is absent)."""
    file = Path(path) / "data_clinical_sample.txt"
    if not file.exists():
        return {}
    frame = read_table(file)
    if not {"SAMPLE_ID", "PATIENT_ID"} <= set(frame.columns):
        return {}
    return dict(zip(frame["SAMPLE_ID"].astype(str), frame["PATIENT_ID"].astype(str)))


def cbioportal_data_files(path: str | Path, modality: str | None = None) -> dict[str, Path]:
    """Modality -> data file of the study (only ``modality`` when given)."""
    folder = _study_dir(Path(path))
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    found: dict[str, Path] = {}
    for mod, patterns in DATA_FILES.items():
        if modality is not None and mod != modality:
            continue
        for pattern in patterns:
            matches = [n for n in names if fnmatch.fnmatch(n, pattern) and "zscore" not in n.lower()
                       and "Zscore" not in n]
            if matches:
                found[mod] = folder / matches[0]
                break
    if modality is not None and modality not in found:
        raise DataError(f"{folder} has no {modality} data file (looked for {', '.join(DATA_FILES.get(modality, ()))})")
    return found


def read_cbioportal_mutations(path: str | Path) -> pd.DataFrame:
    """Samples x genes 0/1 matrix of non-silent mutations from a MAF file."""
    path = Path(path)
    maf = read_table(path)
    missing = [c for c in ("Hugo_Symbol", "Tumor_Sample_Barcode") if c not in maf.columns]
    if missing:
        raise DataError(f"{path} is not a MAF file: it lacks {', '.join(missing)}")
    samples = sorted(maf["Tumor_Sample_Barcode"].dropna().astype(str).unique())
    if "Variant_Classification" in maf.columns:
        maf = maf[~maf["Variant_Classification"].isin(_SILENT)]
    hits = maf.dropna(subset=["Hugo_Symbol", "Tumor_Sample_Barcode"])
    genes = sorted(hits["Hugo_Symbol"].astype(str).unique())
    matrix = pd.DataFrame(np.zeros((len(samples), len(genes))), index=samples, columns=genes)
    for sample, gene in zip(hits["Tumor_Sample_Barcode"].astype(str), hits["Hugo_Symbol"].astype(str)):
        matrix.at[sample, gene] = 1.0
    return matrix


def read_cbioportal_matrix(path: Path, modality: str) -> pd.DataFrame:
    if modality == "mutation":
        return read_cbioportal_mutations(path)
    return read_matrix(path, orientation="features-x-samples")
