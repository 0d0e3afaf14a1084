"""Resolve a manifest into a validated in-memory :class:`Cohort`.

Reading never stops at the first problem: each source is read, linked to patients and checked,
and every problem becomes a finding in the cohort's report, so one run lists all of them.
Patients are linked by ID (TCGA barcodes: first 12 characters); per modality one sample per
patient is kept by the duplicate rule in :mod:`pmx.cohorts.barcodes`.
"""

from __future__ import annotations

import glob as globlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from pmx.errors import DataError

from .barcodes import find_barcode, parse_barcode, patient_of, pick_sample
from .manifest import ClinicalSource, Manifest, OmicsSource, SlideSource, load_manifest
from .model import PATIENT_COLUMNS, SLIDE_COLUMNS, Cohort, OmicsData
from .readers import cbioportal, clinical as clinical_readers, gdc, matrix, mcat
from .readers.common import NonNumericError, read_table, short_list
from .slide_files import inspect_slide
from .validation import ValidationReport

__all__ = ["load_cohort"]

log = logging.getLogger("pmx.cohorts")

_GDC_READERS: dict[str, Callable[[Path, OmicsSource], pd.Series]] = {
    "gdc-star-counts": lambda p, s: gdc.read_star_counts(p, s.value or "unstranded", s.feature),
    "gdc-mirna": lambda p, s: gdc.read_mirna_quantification(p, s.value or "read_count"),
    "gdc-methylation-beta": lambda p, s: gdc.read_methylation_beta(p),
}
_GDC_PATTERNS = {
    "gdc-star-counts": "*star_gene_counts.tsv*",
    "gdc-mirna": "*mirnas.quantification.txt*",
    "gdc-methylation-beta": "*level3betas.txt*",
}


# ---- clinical --------------------------------------------------------------------------------

def _read_clinical(manifest: Manifest, report: ValidationReport) -> pd.DataFrame:
    source: ClinicalSource = manifest.clinical
    path = manifest.resolve(source.path)
    try:
        if source.format == "gdc-clinical":
            frame = gdc.read_gdc_clinical(path, report, cohort=source.cohort)
        elif source.format == "tcga-cdr":
            frame = clinical_readers.read_tcga_cdr(path, report, endpoint=source.endpoint, cohort=source.cohort)
        elif source.format == "mcat":
            frame = mcat.mcat_clinical(mcat.read_mcat_table(path), report, cohort=source.cohort)
        elif source.format == "cbioportal":
            frame = cbioportal.read_cbioportal_clinical(path, report, cohort=source.cohort)
        else:
            frame = clinical_readers.read_clinical_table(
                path, report, id_column=source.id_column, time_column=source.time_column,
                event_column=source.event_column, event_meaning=source.event_meaning, time_unit=source.time_unit,
                site_column=source.site_column, cohort_column=source.cohort_column, cohort=source.cohort)
    except DataError as exc:
        report.error("unreadable-clinical", str(exc), files=[path])
        return pd.DataFrame(columns=PATIENT_COLUMNS)
    frame = frame.copy()
    if "clinical" not in frame:
        frame["clinical"] = None
    if manifest.name or source.cohort or frame["cohort"].isna().all():
        # one cohort name for the whole manifest; a table's own project/type is kept as "project"
        projects = frame["cohort"]
        frame["clinical"] = [_with_key(c, "project", p) for c, p in zip(frame["clinical"], projects)]
        frame["cohort"] = manifest.cohort_name
    else:
        frame["cohort"] = frame["cohort"].fillna(manifest.cohort_name)
    return _check_clinical(frame, report, str(path))


def _with_key(existing: Any, key: str, value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return existing
    data = json.loads(existing) if isinstance(existing, str) and existing else {}
    data.setdefault(key, str(value))
    return json.dumps(data)


def _check_clinical(frame: pd.DataFrame, report: ValidationReport, source: str) -> pd.DataFrame:
    counts = frame["patient_id"].value_counts()
    repeated = counts[counts > 1].index
    if len(repeated):
        rows = frame[frame["patient_id"].isin(repeated)]
        distinct = rows.groupby("patient_id")[["time", "event"]].nunique(dropna=False).max(axis=1)
        conflicting = distinct[distinct > 1].index.tolist()
        same = [p for p in repeated if p not in set(conflicting)]
        if conflicting:
            report.error("duplicate-patient", "patients listed more than once with different survival; keep one "
                         "row per patient", patients=conflicting, files=[source])
        if same:
            report.warning("duplicate-patient", "patients listed more than once with identical survival; merged "
                           "into one row", patients=same, files=[source])
        frame = frame.drop_duplicates("patient_id", keep="first")
    missing = frame["time"].isna() | frame["event"].isna()
    if missing.any():
        report.warning("missing-survival", "patients without survival time or event status were left out",
                       patients=frame.loc[missing, "patient_id"], files=[source])
    negative = frame["time"] < 0
    if negative.any():
        report.error("negative-time", "negative survival times; check the day counts in the source",
                     patients=frame.loc[negative, "patient_id"], files=[source])
    zero = frame["time"] == 0
    if zero.any():
        report.warning("zero-time", "patients with time 0 (no follow-up) carry no survival information and "
                       "were left out", patients=frame.loc[zero, "patient_id"], files=[source])
    kept = frame[~missing & ~negative & ~zero].copy()
    kept["event"] = kept["event"].astype(int)
    if kept.empty and not report.find("unreadable-clinical"):
        report.error("no-patients", "no patient has a usable survival time and event", files=[source])
    return kept.reset_index(drop=True)


# ---- slides ----------------------------------------------------------------------------------

def _slide_rows(manifest: Manifest, source: SlideSource, report: ValidationReport) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    if source.format == "files":
        if source.glob:
            pattern = str(manifest.resolve(source.glob))
            files = sorted(Path(p) for p in globlib.glob(pattern, recursive=True))
            where = pattern
        else:
            folder = manifest.resolve(source.path or ".")
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in source.extensions) if folder.is_dir() else []
            where = str(folder)
        if not files:
            report.error("no-files", f"slides: nothing matches {where}; fix glob/path in the manifest", files=[where])
        unlinked = []
        for file in files:
            barcode = find_barcode(file.name)
            if barcode is None:
                unlinked.append(file)
                continue
            rows.append({"slide_id": _slide_id(file), "patient_id": patient_of(barcode), "path": file,
                         "mpp_override": source.mpp})
        if unlinked:
            report.error("unlinked-file", "slide file names without a TCGA barcode cannot be linked to patients; "
                         "list them in a slides table (format = \"table\") with a patient column", files=unlinked)
        return pd.DataFrame(rows)
    path = manifest.resolve(source.path or "")
    base = manifest.resolve(source.slide_dir) if source.slide_dir else path.parent
    if source.format == "mcat":
        pairs = mcat.mcat_slides(mcat.read_mcat_table(path))
        for patient, file in zip(pairs["patient_id"], pairs["file"]):
            target = base / str(file)
            if not target.exists() and not Path(str(file)).suffix:
                target = base / f"{file}.svs"
            rows.append({"slide_id": _slide_id(target), "patient_id": patient_of(str(patient)), "path": target,
                         "mpp_override": source.mpp})
        return pd.DataFrame(rows)
    table = read_table(path)
    needed = [c for c in (source.patient_column, source.path_column) if c not in table.columns]
    if needed:
        raise DataError(f"{path} has no column(s) {', '.join(needed)}; set patient_column/path_column in [[slides]]")
    for _, row in table.iterrows():
        target = Path(str(row[source.path_column])).expanduser()
        target = target if target.is_absolute() else base / target
        slide_id = row.get(source.slide_column) if source.slide_column in table.columns else None
        mpp = pd.to_numeric(row.get(source.mpp_column), errors="coerce") if source.mpp_column in table.columns else np.nan
        rows.append({
            "slide_id": str(slide_id) if pd.notna(slide_id) else _slide_id(target),
            "patient_id": patient_of(str(row[source.patient_column])),
            "path": target,
            "mpp_override": float(mpp) if pd.notna(mpp) and mpp > 0 else source.mpp,
        })
    return pd.DataFrame(rows)


def _slide_id(path: Path) -> str:
    """File name without the extension (TCGA: ``TCGA-..-DX1.<uuid>``)."""
    name = path.name
    return name[: -len(path.suffix)] if path.suffix else name


def _read_slides(manifest: Manifest, report: ValidationReport, inspect: bool) -> pd.DataFrame:
    parts = []
    for source in manifest.slides:
        try:
            parts.append(_slide_rows(manifest, source, report))
        except DataError as exc:
            report.error("unreadable-slides", str(exc), files=[source.path or source.glob])
    frames = [p for p in parts if len(p)]
    if not frames:
        return pd.DataFrame(columns=SLIDE_COLUMNS)
    slides = pd.concat(frames, ignore_index=True)
    repeated = slides["slide_id"][slides["slide_id"].duplicated()].unique()
    if len(repeated):
        report.error("duplicate-slide", f"slide IDs listed more than once: {short_list(repeated)}",
                     patients=slides.loc[slides["slide_id"].isin(repeated), "patient_id"],
                     files=slides.loc[slides["slide_id"].isin(repeated), "path"])
        slides = slides.drop_duplicates("slide_id")
    exists = slides["path"].map(lambda p: Path(p).is_file())
    if not exists.all():
        report.error("missing-slide-file", "slides point to files that do not exist",
                     patients=slides.loc[~exists, "patient_id"], files=slides.loc[~exists, "path"])
    slides = slides[exists].reset_index(drop=True)
    records = []
    unreadable: list[tuple[str, str, str]] = []
    for row in slides.itertuples(index=False):
        override = row.mpp_override if row.mpp_override is not None and pd.notna(row.mpp_override) else None
        meta: dict[str, Any] = {"vendor": None, "mpp": override, "magnification": None, "width": None,
                                "height": None, "fingerprint": None}
        if inspect:
            try:
                meta = inspect_slide(Path(row.path), override)
            except DataError as exc:
                unreadable.append((row.patient_id, str(row.path), str(exc)))
                continue
        records.append({"slide_id": row.slide_id, "patient_id": row.patient_id, "path": str(Path(row.path).resolve()),
                        **meta})
    if unreadable:
        report.error("unreadable-slide", "OpenSlide cannot open these slides: " + unreadable[0][2],
                     patients=[u[0] for u in unreadable], files=[u[1] for u in unreadable])
    out = pd.DataFrame(records, columns=SLIDE_COLUMNS)
    no_mpp = out["mpp"].isna() if inspect else pd.Series(False, index=out.index)
    if no_mpp.any():
        report.warning("missing-mpp", "slides without a resolution (mpp); tilers that need a physical size will "
                       "fail: add an mpp column to a slides table or mpp = ... to [[slides]]",
                       patients=out.loc[no_mpp, "patient_id"], files=out.loc[no_mpp, "path"])
    return out


# ---- omics -----------------------------------------------------------------------------------

class _RawOmics:
    """Samples x features values of one modality before linking, with the file of each sample."""

    def __init__(self, modality: str, kind: str, frame: pd.DataFrame, files: list[str],
                 sample_patients: dict[str, str] | None = None):
        self.modality, self.kind, self.frame, self.files = modality, kind, frame, files
        self.sample_patients = sample_patients or {}


def _gdc_files(manifest: Manifest, source: OmicsSource) -> list[Path]:
    if source.glob:
        return sorted(Path(p) for p in globlib.glob(str(manifest.resolve(source.glob)), recursive=True))
    folder = manifest.resolve(source.path or ".")
    return sorted(folder.rglob(_GDC_PATTERNS[source.format])) if folder.is_dir() else []


def _read_gdc_source(manifest: Manifest, source: OmicsSource, report: ValidationReport) -> list[_RawOmics]:
    files = _gdc_files(manifest, source)
    where = source.glob or source.path
    if not files:
        report.error("no-files", f"{source.label}: nothing matches {where}; fix glob/path in the manifest",
                     files=[str(manifest.resolve(where or "."))])
        return []
    sheet: dict[str, str] = {}
    cases: dict[str, str] = {}
    if source.sample_sheet:
        table = gdc.read_sample_sheet(manifest.resolve(source.sample_sheet))
        sheet = dict(zip(table["file_name"].astype(str), table["sample_id"].astype(str)))
        if "case_id" in table:  # non-TCGA projects: sample IDs do not contain the case ID
            cases = {s: patient_of(c) for s, c in zip(table["sample_id"].astype(str), table["case_id"].astype(str))}
    reader = _GDC_READERS[source.format]
    series: dict[str, pd.Series] = {}
    sample_files: dict[str, str] = {}
    unlinked, bad_values, unreadable = [], [], []
    for file in files:
        sample = sheet.get(file.name) or find_barcode(str(file.relative_to(manifest.root)) if file.is_relative_to(manifest.root) else file.name)
        if sample is None:
            unlinked.append(file)
            continue
        try:
            values = reader(file, source)
        except NonNumericError as exc:
            bad_values.append((sample, file, str(exc)))
            continue
        except DataError as exc:
            unreadable.append((sample, file, str(exc)))
            continue
        if sample in series:  # two files for one aliquot/sample ID: keep the first, say so
            report.warning("duplicate-files", f"{source.label}: several files for sample {sample}; the first "
                           "(by path) is used", patients=[patient_of(sample)], files=[sample_files[sample], file])
            continue
        series[sample] = values
        sample_files[sample] = str(file)
    if unlinked:
        report.error("unlinked-file", f"{source.label}: files that no sample sheet entry or TCGA barcode in the path "
                     "links to a sample; add sample_sheet = \"gdc_sample_sheet.tsv\" (GDC cart > Sample Sheet)",
                     files=unlinked)
    if bad_values:
        report.error("non-numeric", f"{source.label}: {bad_values[0][2]}", patients=[patient_of(s) for s, _, _ in bad_values],
                     files=[f for _, f, _ in bad_values])
    if unreadable:
        report.error("unreadable-omics", f"{source.label}: {unreadable[0][2]}",
                     patients=[patient_of(s) for s, _, _ in unreadable], files=[f for _, f, _ in unreadable])
    if not series:
        return []
    features = list(dict.fromkeys(f for s in series.values() for f in s.index))
    sizes = {k: len(v) for k, v in series.items()}
    if len(set(sizes.values())) > 1 or any(len(v) != len(features) for v in series.values()):
        short = [sample_files[k] for k, n in sizes.items() if n < len(features)]
        report.warning("feature-mismatch", f"{source.label}: files list different features; the union "
                       f"({len(features)}) is used and absent features are missing values",
                       patients=[patient_of(k) for k, n in sizes.items() if n < len(features)], files=short)
    samples = list(series)
    if all(len(v) == len(features) and list(v.index) == features for v in series.values()):
        matrix_values = np.vstack([series[k].to_numpy() for k in samples])
    else:
        matrix_values = np.vstack([series[k].reindex(features).to_numpy() for k in samples])
    frame = pd.DataFrame(matrix_values, index=samples, columns=features)
    return [_RawOmics(source.modality or "", source.value_kind(), frame, [sample_files[k] for k in frame.index],
                      {s: c for s, c in cases.items() if s in series})]


def _read_omics_source(manifest: Manifest, source: OmicsSource, known: set[str],
                       report: ValidationReport) -> list[_RawOmics]:
    if source.format in _GDC_READERS:
        return _read_gdc_source(manifest, source, report)
    path = manifest.resolve(source.path or "")
    if source.format == "matrix":
        frame = matrix.read_matrix(path, orientation=source.orientation, id_column=source.id_column, known_ids=known)
        return [_RawOmics(source.modality or "", source.value_kind(), frame, [str(path)] * len(frame))]
    if source.format == "h5ad":
        frame = matrix.read_h5ad(path, id_column=source.id_column)
        return [_RawOmics(source.modality or "", source.value_kind(), frame, [str(path)] * len(frame))]
    if source.format == "mcat":
        blocks = mcat.mcat_omics(mcat.read_mcat_table(path))
        if source.modality is not None:
            if source.modality not in blocks:
                raise DataError(f"{path} has no {source.modality} columns; it has {', '.join(blocks)}")
            blocks = {source.modality: blocks[source.modality]}
        return [_RawOmics(m, source.value_kind(m), f, [str(path)] * len(f)) for m, f in blocks.items()]
    # cBioPortal study folder
    samples = cbioportal.cbioportal_sample_patients(path)
    out = []
    for modality, file in cbioportal.cbioportal_data_files(path, source.modality).items():
        frame = cbioportal.read_cbioportal_matrix(file, modality)
        out.append(_RawOmics(modality, source.value_kind(modality), frame, [str(file)] * len(frame), samples))
    if not out:
        report.warning("no-files", f"{source.label}: no data files recognised in {path}", files=[path])
    return out


def _link(raw: _RawOmics, source: OmicsSource, report: ValidationReport) -> OmicsData | None:
    """One row per patient: apply the duplicate rule to the samples of each patient."""
    samples = [str(s) for s in raw.frame.index]
    patients = [raw.sample_patients.get(s) or patient_of(s) for s in samples]
    by_patient: dict[str, list[str]] = {}
    for sample, patient in zip(samples, patients):
        by_patient.setdefault(patient, []).append(sample)
    chosen: dict[str, str] = {}
    normals_only, duplicates, normals_dropped = [], [], []
    for patient, group in by_patient.items():
        pick = pick_sample(group, include_normals=source.include_normals)
        if pick is None:
            normals_only.append(patient)
            continue
        chosen[patient] = pick
        if len(group) > 1:
            duplicates.append(patient)
            if any((b := parse_barcode(s)) is not None and b.is_normal for s in group if s != pick):
                normals_dropped.append(patient)
    label = f"omics[{raw.modality}]"
    if normals_only:
        report.warning("normal-samples-only", f"{label}: patients with only normal-tissue samples were left out "
                       "(set include_normals = true to keep them)", patients=normals_only)
    if duplicates:
        report.warning("duplicate-samples", f"{label}: patients with several samples; kept one by the duplicate "
                       "rule (primary tumour 01 first, then lowest vial, then smallest barcode)", patients=duplicates)
    if not chosen:
        return None
    order = sorted(chosen)
    position = {s: i for i, s in enumerate(samples)}
    rows = [position[chosen[p]] for p in order]
    values = raw.frame.to_numpy(dtype=np.float64)[rows]
    return OmicsData(raw.modality, raw.kind, order, [chosen[p] for p in order], [str(c) for c in raw.frame.columns],
                     values.astype(np.float32), [raw.files[r] for r in rows])


def _check_values(data: OmicsData, report: ValidationReport) -> OmicsData:
    label = f"omics[{data.modality}]"
    values = data.values
    finite = np.where(np.isnan(values), 0.0, values)

    def offenders(rows: np.ndarray) -> tuple[list[str], list[str]]:
        return offenders_of(data, rows)

    if data.kind == "counts":
        negative = (finite < 0).any(axis=1)
        if negative.any():
            patients, files = offenders(negative)
            report.error("negative-counts", f"{label}: negative read counts (if these are normalised values, "
                         "set kind = \"continuous\" on this source in the manifest)", patients, files)
        fractional = (np.abs(finite - np.round(finite)) > 1e-6).any(axis=1)
        if fractional.any():
            report.warning("non-integer-counts", f"{label}: counts that are not whole numbers (normalised values?); "
                           "count-based selectors (DESeq2) round them", *offenders(fractional))
    elif data.kind == "beta":
        outside = ((finite < 0) | (finite > 1)).any(axis=1)
        if outside.any():
            report.error("beta-out-of-range", f"{label}: beta values outside [0, 1] (M-values? convert with "
                         "beta = 2^M / (1 + 2^M))", *offenders(outside))
    elif data.kind == "binary":
        other = ~np.isin(finite, (0.0, 1.0)).all(axis=1)
        if other.any():
            report.error("not-binary", f"{label}: values other than 0/1 in a binary modality", *offenders(other))
    empty = np.isnan(values).all(axis=1)
    if empty.any():
        report.warning("empty-sample", f"{label}: samples with no values at all were left out", *offenders(empty))
        data = data.subset({p for p, e in zip(data.patients, empty) if not e})
    missing = np.isnan(data.values)
    if missing.any():
        rows = missing.any(axis=1)
        report.warning("missing-values", f"{label}: {int(missing.sum())} missing value(s) in "
                       f"{int(missing.any(axis=0).sum())} feature(s) (selectors drop or impute them)",
                       patients=offenders_of(data, rows)[0])
    return data


def offenders_of(data: OmicsData, rows: np.ndarray) -> tuple[list[str], list[str]]:
    idx = np.flatnonzero(rows)
    return [data.patients[i] for i in idx], [data.files[i] for i in idx]


def _read_omics(manifest: Manifest, known: set[str], report: ValidationReport) -> dict[str, OmicsData]:
    out: dict[str, OmicsData] = {}
    for source in manifest.omics:
        try:
            raws = _read_omics_source(manifest, source, known, report)
        except NonNumericError as exc:
            report.error("non-numeric", f"{source.label}: {exc}", files=[source.path or source.glob])
            continue
        except DataError as exc:
            report.error("unreadable-omics", f"{source.label}: {exc}", files=[source.path or source.glob])
            continue
        for raw in raws:
            if raw.modality in out:
                report.error("duplicate-modality", f"modality {raw.modality!r} comes from more than one source; "
                             "give each source its own modality name", files=[source.path or source.glob])
                continue
            linked = _link(raw, source, report)
            if linked is None:
                report.error("empty-modality", f"omics[{raw.modality}]: no sample could be linked to a patient",
                             files=raw.files[:1])
                continue
            out[raw.modality] = _check_values(linked, report)
    return out


# ---- cross-modality checks --------------------------------------------------------------------

def _match_ids(clinical: set[str], name: str, patients: set[str], files: dict[str, list[str]],
               report: ValidationReport) -> set[str]:
    """Patients of one modality that are in the clinical table (the others are reported)."""
    unknown = patients - clinical
    if clinical and patients and not (patients & clinical):
        report.error("ids-do-not-match", f"{name}: none of its {len(patients)} patient IDs is in the clinical table "
                     f"(e.g. {short_list(sorted(patients), 3)} vs clinical {short_list(sorted(clinical), 3)}); "
                     "check the ID column or barcodes", patients=sorted(unknown)[:50],
                     files=[f for p in sorted(unknown)[:50] for f in files.get(p, [])])
        return set()
    if unknown:
        report.warning("unmatched-ids", f"{name}: patients not in the clinical table were left out",
                       patients=unknown, files=[f for p in unknown for f in files.get(p, [])])
    return patients & clinical


def load_cohort(manifest: Manifest | str | Path, *, inspect_slides: bool = True) -> Cohort:
    """Read every source of ``manifest``; problems are in ``cohort.report`` (nothing raises for data)."""
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    report = ValidationReport()
    patients = _read_clinical(manifest, report)
    clinical_ids = set(patients["patient_id"])
    slides = _read_slides(manifest, report, inspect_slides)
    omics = _read_omics(manifest, clinical_ids, report)

    if len(slides):
        files = slides.groupby("patient_id")["path"].apply(list).to_dict()
        keep = _match_ids(clinical_ids, "slides", set(slides["patient_id"]), files, report)
        slides = slides[slides["patient_id"].isin(keep)].reset_index(drop=True)
    for modality in list(omics):
        data = omics[modality]
        files = {p: [f] for p, f in zip(data.patients, data.files)}
        keep = _match_ids(clinical_ids, f"omics[{modality}]", set(data.patients), files, report)
        omics[modality] = data.subset(keep)
        if not keep:
            del omics[modality]
    covered = set(slides["patient_id"]) if len(slides) else set()
    for data in omics.values():
        covered |= set(data.patients)
    if manifest.slides or manifest.omics:
        bare = clinical_ids - covered
        if bare:
            report.warning("no-data", "patients in the clinical table without any slide or omics data",
                           patients=bare)

    sample_ids = {m: dict(zip(d.patients, d.samples)) for m, d in omics.items()}
    patients = patients.copy()
    patients["clinical"] = [
        _clinical_json(row.clinical, {m: ids[row.patient_id] for m, ids in sample_ids.items() if row.patient_id in ids})
        for row in patients.itertuples(index=False)
    ]
    patients = patients.sort_values("patient_id").reset_index(drop=True)[PATIENT_COLUMNS]
    log.debug("loaded cohort %s: %d patients, %d slides, omics %s", manifest.cohort_name, len(patients),
              len(slides), ", ".join(omics))
    return Cohort(manifest.cohort_name, patients, slides, omics, report)


def _clinical_json(existing: Any, samples: dict[str, str]) -> str:
    data: dict[str, Any] = {}
    if isinstance(existing, str) and existing:
        try:
            data = json.loads(existing)
        except json.JSONDecodeError:
            data = {"raw": existing}
    data["time_unit"] = "days"
    if samples:
        data["samples"] = samples
    return json.dumps(data, sort_keys=True)
