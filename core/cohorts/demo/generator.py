"""``pmx demo-data``: a complete synthetic cohort with planted signal, in real file layouts.

What is written (all under OUT_DIR)::

    manifest.toml                  the cohort manifest (docs/cohorts.md) `pmx ingest` reads
    clinical.tsv                   GDC clinical layout (two rows per case, '-- placeholders)
    slides/TCGA-XX-YYYY-01Z-00-DX1.<uuid>.svs   Aperio-style pyramidal TIFFs
    omics/gdc_sample_sheet.tsv     GDC sample sheet: file name -> case and sample barcodes
    omics/rna/<file-id>/<file-id>.rna_seq.augmented_star_gene_counts.tsv
    omics/mirna/<file-id>/<file-id>.mirbase21.mirnas.quantification.txt
    omics/methylation/<file-id>/<file-id>.methylation_array.sesame.level3betas.txt
    signatures.csv                 MCAT-style gene families of the demo genes
    truth.json                     oracle and per-modality reachable C-index, settings
    truth.tsv                      per patient: latent factors, true risk, event/censoring times
    planted.json                   planted features per omics modality and factor

Everything is drawn from independent random streams derived from the seed, so the cohort is
identical for a seed whatever the number of worker processes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from pmx.errors import DataError

from ..manifest import ClinicalSource, Manifest, OmicsSource, SlideSource, dump_manifest_toml
from . import omics as omics_sim
from .signal import FACTORS, RISK_WEIGHTS, VISIBLE_IN, draw_factors, draw_survival, harrell_c, reachable_risk
from .slides import render_to_file

__all__ = ["DemoSettings", "DemoCohort", "generate_demo_cohort", "demo_truth", "OMICS_MODALITIES"]

log = logging.getLogger("pmx.cohorts.demo")

OMICS_MODALITIES = ("rna", "mirna", "methylation")
MODALITIES = ("slide", *OMICS_MODALITIES)
PROJECT = "PMX-DEMO"
_SITES = ("A1", "B6", "C8", "D8", "E2")
_SITE_WEIGHTS = (0.3, 0.25, 0.2, 0.15, 0.1)
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_STREAMS = {"factors": 1, "ids": 2, "missing": 3, "rna": 4, "mirna": 5, "methylation": 6,
            "files": 7, "clinical": 8, "signatures": 9, "slides": 100}
_OUTPUT_FILES = ("manifest.toml", "clinical.tsv", "signatures.csv", "truth.json", "truth.tsv", "planted.json")
_FAMILIES = ("Tumor Suppressor Genes", "Oncogenes", "Protein Kinases", "Cell Differentiation Markers",
             "Transcription Factors", "Cytokines and Growth Factors")
_GDC_FILES = {
    "rna": ("rna_seq.augmented_star_gene_counts.tsv", "Transcriptome Profiling", "Gene Expression Quantification", "R", "07"),
    "mirna": ("mirbase21.mirnas.quantification.txt", "Transcriptome Profiling", "miRNA Expression Quantification", "R", "13"),
    "methylation": ("methylation_array.sesame.level3betas.txt", "DNA Methylation", "Methylation Beta Value", "D", "05"),
}


@dataclass(frozen=True)
class DemoSettings:
    """Size and randomness of the demo cohort (defaults: the cohort the README's demo uses)."""

    patients: int = 150
    seed: int = 0
    slide_size: int = 2048  # level-0 width in pixels at 20x (height is 3/4 of it)
    missing: float = 0.0  # probability that each modality is absent for a patient
    censoring: float = 0.4
    genes: int = 2000
    mirnas: int = 300
    cpgs: int = 2000
    workers: int | None = None  # slide-rendering processes (None: up to the CPU count)

    def check(self) -> None:
        if self.patients < 10:
            raise DataError(f"--patients must be at least 10 (got {self.patients}): folds need several patients")
        if not 256 <= self.slide_size <= 16384:
            raise DataError(f"--slide-size must be between 256 and 16384 pixels (got {self.slide_size})")
        if not 0.0 <= self.missing < 1.0:
            raise DataError(f"--missing must be in [0, 1) (got {self.missing})")
        if not 0.3 <= self.censoring <= 0.6:
            raise DataError(f"censoring must be between 0.3 and 0.6 (got {self.censoring})")
        for name in ("genes", "mirnas", "cpgs"):
            if getattr(self, name) < 100:
                raise DataError(f"{name} must be at least 100 so the planted features fit")


@dataclass
class DemoCohort:
    """What generation produced: the folder, the manifest and the headline numbers."""

    root: Path
    manifest: Path
    truth: dict[str, Any]
    patients: list[str] = field(default_factory=list)
    n_slides: int = 0


def _rng(seed: int, stream: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[stream], index]))


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _code(rng: np.random.Generator, length: int) -> str:
    return "".join(_ALNUM[i] for i in rng.integers(0, len(_ALNUM), length))


def _patient_ids(rng: np.random.Generator, n: int) -> tuple[list[str], np.ndarray]:
    sites = rng.choice(len(_SITES), n, p=_SITE_WEIGHTS)
    ids: list[str] = []
    seen: set[str] = set()
    for site in sites:
        while True:
            barcode = f"TCGA-{_SITES[site]}-{_code(rng, 4)}"
            if barcode not in seen:
                break
        seen.add(barcode)
        ids.append(barcode)
    return ids, np.array([_SITES[s] for s in sites])


def _availability(rng: np.random.Generator, n: int, missing: float) -> dict[str, np.ndarray]:
    draws = rng.random((n, len(MODALITIES))) >= missing
    empty = ~draws.any(axis=1)
    draws[empty, rng.integers(0, len(MODALITIES), int(empty.sum()))] = True  # keep at least one
    return {m: draws[:, j] for j, m in enumerate(MODALITIES)}


@dataclass
class _Sample:
    patient: int
    barcode: str
    normal: bool = False


def _samples(rng: np.random.Generator, patients: list[str], available: np.ndarray, modality: str) -> list[_Sample]:
    """One tumour sample per available patient, plus a few normals and duplicate aliquots."""
    analyte, centre = _GDC_FILES[modality][3], _GDC_FILES[modality][4]
    plate = _code(rng, 4)
    samples = []
    for i in np.flatnonzero(available):
        portion = int(rng.integers(11, 15))
        samples.append(_Sample(i, f"{patients[i]}-01A-{portion}{analyte}-{plate}-{centre}"))
        if rng.random() < 0.05:  # matched normal tissue: must not replace the tumour sample
            samples.append(_Sample(i, f"{patients[i]}-11A-{portion}{analyte}-{plate}-{centre}", normal=True))
        elif rng.random() < 0.03:  # second tumour vial: the duplicate rule keeps vial A
            samples.append(_Sample(i, f"{patients[i]}-01B-{portion}{analyte}-{_code(rng, 4)}-{centre}"))
    return samples


def _render_slides(tasks: list[tuple], workers: int | None, progress: bool) -> None:
    from tqdm import tqdm

    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    workers = max(1, min(workers, len(tasks)))
    bar = tqdm(total=len(tasks), desc="demo slides", unit="slide", disable=not progress, leave=False)
    if workers == 1 or len(tasks) < 6:
        for task in tasks:
            render_to_file(task)
            bar.update()
    else:
        # spawn: the caller may hold threads (torch, Lance) that a fork would copy mid-state
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for _ in pool.map(render_to_file, tasks, chunksize=2):
                bar.update()
    bar.close()


def _write_clinical(path: Path, rng: np.random.Generator, patients: list[str], case_ids: list[str],
                    time: np.ndarray, event: np.ndarray) -> None:
    """GDC clinical.tsv (legacy layout): two treatment rows per case, "'--" for empty fields."""
    header = ["case_id", "case_submitter_id", "project_id", "age_at_index", "gender", "vital_status",
              "days_to_death", "days_to_last_follow_up", "ajcc_pathologic_stage", "primary_diagnosis",
              "treatment_or_therapy", "treatment_type"]
    stages = ["Stage I", "Stage II", "Stage IIA", "Stage IIB", "Stage III", "Stage IV", "'--"]
    lines = ["\t".join(header)]
    for i, patient in enumerate(patients):
        dead = bool(event[i])
        days = int(time[i])
        follow = "'--"
        if dead and rng.random() < 0.5:
            follow = str(int(days * rng.uniform(0.3, 1.0)))  # last visit before death
        elif not dead:
            follow = str(days)
        age = str(int(rng.integers(32, 86)))
        gender = "female" if rng.random() < 0.55 else "male"
        stage = stages[int(rng.integers(0, len(stages)))]
        for treatment in ("Pharmaceutical Therapy, NOS", "Radiation Therapy, NOS"):
            lines.append("\t".join([
                case_ids[i], patient, PROJECT, age, gender, "Dead" if dead else "Alive",
                str(days) if dead else "'--", follow, stage, "Infiltrating duct carcinoma, NOS",
                "yes" if rng.random() < 0.5 else "no", treatment,
            ]))
    path.write_text("\n".join(lines) + "\n")


def _write_signatures(path: Path, rng: np.random.Generator, genes: list[str]) -> None:
    """MCAT signatures.csv layout: one column per gene family listing gene symbols."""
    chosen = rng.permutation(len(genes))[: int(len(genes) * 0.6)]
    columns: list[list[str]] = [[] for _ in _FAMILIES]
    for k, g in enumerate(sorted(chosen)):
        columns[int(rng.integers(0, len(_FAMILIES)))].append(genes[g])
    depth = max(len(c) for c in columns)
    lines = [",".join(_FAMILIES)]
    for r in range(depth):
        lines.append(",".join(c[r] if r < len(c) else "" for c in columns))
    path.write_text("\n".join(lines) + "\n")


def _truth(settings: DemoSettings, factors: dict[str, np.ndarray], time: np.ndarray, event: np.ndarray) -> dict[str, Any]:
    risk_all = reachable_risk(factors, list(VISIBLE_IN))
    c_index = {"oracle": harrell_c(risk_all, time, event)}
    groups = {"slide": ["slide"], "omics": list(OMICS_MODALITIES), "rna": ["rna"], "mirna": ["mirna"],
              "methylation": ["methylation"], "multimodal": list(MODALITIES)}
    for name, modalities in groups.items():
        c_index[name] = harrell_c(reachable_risk(factors, modalities), time, event)
    return {
        "generator": "pmx demo-data",
        "settings": asdict(settings),
        "n_patients": int(time.size),
        "n_events": int(event.sum()),
        "censoring_fraction": round(float(1 - event.mean()), 4),
        "time_unit": "days",
        "c_index": {k: round(v, 4) for k, v in c_index.items()},
        "c_index_note": ("Harrell's C of the true log-hazard ('oracle') and of the part of it made of "
                         "the latent factors each modality shows ('slide', 'omics', 'rna', ...; "
                         "'multimodal' = slide + all omics). A model cannot expect to beat these."),
        "risk_weights": RISK_WEIGHTS,
        "visible_in": {k: list(v) for k, v in VISIBLE_IN.items()},
    }


@dataclass
class _Draw:
    patients: list[str]
    sites: np.ndarray
    factors: dict[str, np.ndarray]
    survival: Any
    available: dict[str, np.ndarray]


def _draw(settings: DemoSettings) -> _Draw:
    """Patients, latent factors, survival and availability: everything before any file is written."""
    patients, sites = _patient_ids(_rng(settings.seed, "ids"), settings.patients)
    factor_rng = _rng(settings.seed, "factors")
    factors = draw_factors(factor_rng, settings.patients)
    survival = draw_survival(factor_rng, reachable_risk(factors, list(VISIBLE_IN)), censoring=settings.censoring)
    available = _availability(_rng(settings.seed, "missing"), settings.patients, settings.missing)
    return _Draw(patients, sites, factors, survival, available)


def demo_truth(settings: DemoSettings | None = None) -> dict[str, Any]:
    """truth.json of the cohort ``settings`` would generate, without writing anything (fast)."""
    settings = settings or DemoSettings()
    settings.check()
    draw = _draw(settings)
    return _truth(settings, draw.factors, draw.survival.time, draw.survival.event)


def generate_demo_cohort(out_dir: str | Path, settings: DemoSettings | None = None, *,
                         progress: bool = True, overwrite: bool = False) -> DemoCohort:
    """Write the demo cohort to ``out_dir`` and return where its manifest and truth are."""
    settings = settings or DemoSettings()
    settings.check()
    root = Path(out_dir)
    if (root / "manifest.toml").exists() and not overwrite:
        raise DataError(f"{root} already holds a cohort (manifest.toml); choose another folder "
                        "or pass --overwrite")
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} exists and is not a folder")
    if (root / "manifest.toml").exists():  # --overwrite: remove the previous cohort's files only
        for folder in ("slides", "omics"):
            shutil.rmtree(root / folder, ignore_errors=True)
        for name in _OUTPUT_FILES:
            (root / name).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    seed, n = settings.seed, settings.patients
    draw = _draw(settings)
    patients, sites, factors, survival, available = (draw.patients, draw.sites, draw.factors, draw.survival,
                                                     draw.available)
    id_rng = _rng(seed, "ids", 1)
    case_ids = [_uuid(id_rng) for _ in patients]

    # ---- omics -------------------------------------------------------------------------------
    (root / "omics").mkdir(exist_ok=True)
    file_rng = _rng(seed, "files")
    sheet = ["File ID\tFile Name\tData Category\tData Type\tProject ID\tCase ID\tSample ID\tSample Type"]
    planted: dict[str, Any] = {}
    simulators = {"rna": (omics_sim.simulate_rna, settings.genes),
                  "mirna": (omics_sim.simulate_mirna, settings.mirnas),
                  "methylation": (omics_sim.simulate_methylation, settings.cpgs)}
    rna_genes: list[str] = []
    for modality in OMICS_MODALITIES:
        rng = _rng(seed, modality)
        samples = _samples(rng, patients, available[modality], modality)
        index = np.array([s.patient for s in samples], dtype=int)
        normal = np.array([s.normal for s in samples])
        sample_factors = {k: v[index] for k, v in factors.items()}
        simulate, size = simulators[modality]
        panel = simulate(rng, sample_factors, sites[index], size, normal)
        suffix, category, data_type = _GDC_FILES[modality][:3]
        folder = root / "omics" / modality
        folder.mkdir(exist_ok=True)
        for row, sample in enumerate(samples):
            file_id = _uuid(file_rng)
            target = folder / file_id
            target.mkdir(exist_ok=True)
            name = f"{_uuid(file_rng)}.{suffix}"
            if modality == "rna":
                omics_sim.write_star_counts(target / name, panel, row, file_rng)
            elif modality == "mirna":
                omics_sim.write_mirna_quantification(target / name, panel, row)
            else:
                omics_sim.write_methylation_beta(target / name, panel, row)
            sample_id = sample.barcode[:16]
            kind = "Solid Tissue Normal" if sample.normal else "Primary Tumor"
            sheet.append("\t".join([file_id, name, category, data_type, PROJECT, patients[sample.patient],
                                    sample_id, kind]))
        planted[modality] = {
            "features": sorted({f for names in panel.planted.values() for f in names}),
            "by_factor": panel.planted,
            "loadings": panel.loadings,
            "n_features": len(panel.names),
        }
        if modality == "rna":
            rna_genes = panel.names
    (root / "omics" / "gdc_sample_sheet.tsv").write_text("\n".join(sheet) + "\n")

    # ---- slides ------------------------------------------------------------------------------
    (root / "slides").mkdir(exist_ok=True)
    slide_rng = _rng(seed, "slides")
    site_tint = {s: float(slide_rng.normal(0, 1)) for s in _SITES}
    width = settings.slide_size - settings.slide_size % 16
    height = (width * 3 // 4) // 16 * 16
    tasks = []
    for i in np.flatnonzero(available["slide"]):
        look = {name: float(factors[name][i]) for name in VISIBLE_IN["slide"]}
        look["site_tint"] = site_tint[sites[i]]
        count = 2 if slide_rng.random() < 0.05 else 1
        for k in range(count):
            name = f"{patients[i]}-01Z-00-DX{k + 1}.{_uuid(slide_rng).upper()}.svs"
            entropy = [seed, _STREAMS["slides"], len(tasks)]
            tasks.append((str(root / "slides" / name), look, width, height, entropy))
    _render_slides(tasks, settings.workers, progress)

    # ---- clinical, truth, manifest -----------------------------------------------------------
    _write_clinical(root / "clinical.tsv", _rng(seed, "clinical"), patients, case_ids, survival.time, survival.event)
    _write_signatures(root / "signatures.csv", _rng(seed, "signatures"), rna_genes)
    truth = _truth(settings, factors, survival.time, survival.event)
    truth["modalities_available"] = {m: int(available[m].sum()) for m in MODALITIES}
    truth["planted_file"] = "planted.json"
    (root / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    planted["slide"] = {"factors": {f: RISK_WEIGHTS[f] for f in VISIBLE_IN["slide"]},
                        "how": {"density": "nuclei per tissue area", "hue": "stain colour",
                                "texture": "stroma fibre frequency", "grade": "nuclear size",
                                "immune": "lymphocyte clusters"}}
    (root / "planted.json").write_text(json.dumps(planted, indent=2) + "\n")
    risk_all = reachable_risk(factors, list(VISIBLE_IN))
    header = ["patient_id", "site", *FACTORS, "risk", "risk_slide", "risk_omics", "time", "event",
              "event_time", "censor_time", *[f"has_{m}" for m in MODALITIES]]
    rows = ["\t".join(header)]
    risk_slide = reachable_risk(factors, ["slide"])
    risk_omics = reachable_risk(factors, list(OMICS_MODALITIES))
    for i, patient in enumerate(patients):
        rows.append("\t".join([
            patient, sites[i], *[f"{factors[f][i]:.5f}" for f in FACTORS], f"{risk_all[i]:.5f}",
            f"{risk_slide[i]:.5f}", f"{risk_omics[i]:.5f}", str(int(survival.time[i])), str(int(survival.event[i])),
            str(int(survival.event_time[i])), str(int(survival.censor_time[i])),
            *[str(int(available[m][i])) for m in MODALITIES],
        ]))
    (root / "truth.tsv").write_text("\n".join(rows) + "\n")

    manifest = Manifest(
        name="pmx-demo",
        root=root.resolve(),
        clinical=ClinicalSource(format="gdc-clinical", path="clinical.tsv"),
        slides=[SlideSource(format="files", glob="slides/*.svs")],
        omics=[
            OmicsSource(modality="rna", format="gdc-star-counts", sample_sheet="omics/gdc_sample_sheet.tsv",
                        glob="omics/rna/*/*.rna_seq.augmented_star_gene_counts.tsv"),
            OmicsSource(modality="mirna", format="gdc-mirna", sample_sheet="omics/gdc_sample_sheet.tsv",
                        glob="omics/mirna/*/*.mirbase21.mirnas.quantification.txt"),
            OmicsSource(modality="methylation", format="gdc-methylation-beta",
                        sample_sheet="omics/gdc_sample_sheet.tsv",
                        glob="omics/methylation/*/*.methylation_array.sesame.level3betas.txt"),
        ],
    )
    text = dump_manifest_toml(manifest, comments={
        "clinical": "survival from the GDC clinical table (vital_status, days_to_death, days_to_last_follow_up)",
        "slides": "patients come from the TCGA barcode in each file name",
        "omics.rna": "GDC per-sample files; the sample sheet links file names to sample barcodes",
    })
    manifest_path = root / "manifest.toml"
    manifest_path.write_text(text)
    log.info("demo cohort: %d patients, %d slides, oracle C-index %.3f -> %s", n, len(tasks),
             truth["c_index"]["oracle"], root)
    return DemoCohort(root=root, manifest=manifest_path, truth=truth, patients=patients, n_slides=len(tasks))
