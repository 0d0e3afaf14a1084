"""Small cohorts in real layouts built from ../shared/testdata, for reader/validation/ingest tests.

``write_cohort_folder`` writes: a plain clinical table, a slides table pointing at the real
CMU-1 slides, per-sample STAR files derived from the real GDC sample (barcodes in the file
names, one patient with an extra normal sample) and a methylation matrix (CpGs x samples), plus
manifest.toml. Keyword arguments plant one problem at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PATIENTS = ["TCGA-AA-0001", "TCGA-AA-0002", "TCGA-BB-0003", "TCGA-BB-0004"]
TIMES = [100.0, 250.0, 400.0, 900.0]
EVENTS = [1, 0, 1, 0]
PROBES = [f"cg{i:08d}" for i in range(1, 7)]


def star_variant(sample: Path, target: Path, scale: float, *, negative: bool = False,
                 text_value: str | None = None) -> None:
    """The real STAR file with its gene counts scaled (N_* rows and comment line untouched)."""
    lines = sample.read_text().splitlines()
    out = lines[:6]
    for k, line in enumerate(lines[6:]):
        cells = line.split("\t")
        count = int(round(int(cells[3]) * scale))
        if negative and k == 0:
            count = -5
        cells[3] = str(count)
        if text_value is not None and k == 1:
            cells[3] = text_value
        out.append("\t".join(cells))
    target.write_text("\n".join(out) + "\n")


def star_counts_of(sample: Path, scale: float) -> dict[str, float]:
    """Expected gene_name -> count of ``star_variant`` (duplicated symbols summed)."""
    counts: dict[str, float] = {}
    for line in sample.read_text().splitlines()[6:]:
        cells = line.split("\t")
        counts[cells[1]] = counts.get(cells[1], 0.0) + int(round(int(cells[3]) * scale))
    return counts


def write_cohort_folder(
    root: Path,
    testdata: Path,
    *,
    duplicate_patient: str | None = None,  # "same" or "conflict"
    missing_survival: bool = False,
    missing_slide_file: bool = False,
    broken_slide: bool = False,
    negative_counts: bool = False,
    non_numeric: bool = False,
    unknown_omics_patient: bool = False,
    beta_out_of_range: bool = False,
    mpp_override: float | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = ["patient_id,time,event,site"]
    for p, t, e in zip(PATIENTS, TIMES, EVENTS):
        rows.append(f"{p},{t},{e},{p[5:7]}")
    if duplicate_patient == "same":
        rows.append(f"{PATIENTS[0]},{TIMES[0]},{EVENTS[0]},AA")
    elif duplicate_patient == "conflict":
        rows.append(f"{PATIENTS[0]},{TIMES[0] + 50},{EVENTS[0]},AA")
    if missing_survival:
        rows.append("TCGA-CC-0005,,1,CC")
    (root / "clinical.csv").write_text("\n".join(rows) + "\n")

    slides = ["patient_id,path,mpp"]
    slides.append(f"{PATIENTS[0]},{testdata / 'CMU-1-Small-Region.svs'},")
    slides.append(f"{PATIENTS[1]},{testdata / 'CMU-1-Small-Region-pyramid.svs'},{mpp_override or ''}")
    if missing_slide_file:
        slides.append(f"{PATIENTS[2]},{root / 'nowhere.svs'},")
    if broken_slide:
        slides.append(f"{PATIENTS[3]},{testdata / 'broken.svs'},")
    (root / "slides.csv").write_text("\n".join(slides) + "\n")

    rna = root / "rna"
    rna.mkdir(exist_ok=True)
    sample = testdata / "star_gene_counts_sample.tsv"
    for k, patient in enumerate(PATIENTS[:3]):
        star_variant(sample, rna / f"{patient}-01A-11R-A00{k}-07.augmented_star_gene_counts.tsv", 1.0 + k,
                     negative=negative_counts and k == 1, text_value="many" if non_numeric and k == 2 else None)
    star_variant(sample, rna / f"{PATIENTS[0]}-11A-11R-A009-07.augmented_star_gene_counts.tsv", 7.0)  # normal
    if unknown_omics_patient:
        star_variant(sample, rna / "TCGA-ZZ-9999-01A-11R-A00X-07.augmented_star_gene_counts.tsv", 1.0)

    rng = np.random.default_rng(0)
    samples = [f"{p}-01A" for p in PATIENTS]
    beta = rng.uniform(0.05, 0.95, (len(PROBES), len(samples)))
    if beta_out_of_range:
        beta[0, 1] = 1.7
    lines = ["probe," + ",".join(samples)]
    for probe, values in zip(PROBES, beta):
        lines.append(probe + "," + ",".join(f"{v:.6f}" for v in values))
    (root / "methylation.csv").write_text("\n".join(lines) + "\n")
    np.save(root / "methylation_values.npy", beta.T)

    (root / "manifest.toml").write_text(
        'version = 1\nname = "mini"\n\n'
        '[clinical]\nformat = "table"\npath = "clinical.csv"\nsite_column = "site"\n\n'
        '[[slides]]\nformat = "table"\npath = "slides.csv"\n\n'
        '[[omics]]\nmodality = "rna"\nformat = "gdc-star-counts"\nglob = "rna/*.tsv"\n\n'
        '[[omics]]\nmodality = "methylation"\nformat = "matrix"\npath = "methylation.csv"\n'
    )
    return root / "manifest.toml"


def mcat_table(tmp_path: Path) -> Path:
    """An MCAT dataset_csv: one row per slide, survival, suffixed gene columns."""
    path = tmp_path / "tcga_blca_all_clean.csv"
    path.write_text(
        ",case_id,slide_id,site,is_female,oncotree_code,age,survival_months,censorship,train,"
        "TP53_mut,TP53_cnv,KRAS_cnv,TP53_rnaseq,KRAS_rnaseq\n"
        "0,TCGA-2F-A9KO,TCGA-2F-A9KO-01Z-00-DX1.195576CF.svs,2F,0,BLCA,63,24.11,0,1,1,-1,0.5,1.2,-0.3\n"
        "1,TCGA-2F-A9KO,TCGA-2F-A9KO-01Z-00-DX2.AAAA.svs,2F,0,BLCA,63,24.11,0,1,1,-1,0.5,1.2,-0.3\n"
        "2,TCGA-2F-A9KP,TCGA-2F-A9KP-01Z-00-DX1.3BBB.svs,2F,1,BLCA,66,11.0,1,1,0,0,1.0,-0.4,0.8\n")
    return path


def cbioportal_study(tmp_path: Path) -> Path:
    """A cBioPortal study folder: patient table, RSEM and methylation matrices, a MAF."""
    study = tmp_path / "blca_tcga"
    study.mkdir()
    (study / "meta_study.txt").write_text("type_of_cancer: blca\ncancer_study_identifier: blca_tcga\n")
    (study / "data_clinical_patient.txt").write_text(
        "#Patient Identifier\tOverall Survival (Months)\tOverall Survival Status\n"
        "#Patient identifier\tOS months\tOS status\n#STRING\tNUMBER\tSTRING\n#1\t1\t1\n"
        "PATIENT_ID\tOS_MONTHS\tOS_STATUS\nTCGA-AA-0001\t12.0\t1:DECEASED\nTCGA-AA-0002\t30.5\t0:LIVING\n"
        "TCGA-AA-0003\t[Not Available]\t0:LIVING\n")
    (study / "data_mrna_seq_v2_rsem.txt").write_text(
        "Hugo_Symbol\tEntrez_Gene_Id\tTCGA-AA-0001-01\tTCGA-AA-0002-01\n"
        "TP53\t7157\t100.5\t200.0\nKRAS\t3845\t5\tNA\n\t9999\t1\t2\nTP53\t7157\t300.5\t400.0\n")
    (study / "data_mrna_seq_v2_rsem_zscores_ref_all_samples.txt").write_text("Hugo_Symbol\tX\nA\t1\n")
    (study / "data_methylation_hm450.txt").write_text(
        "Hugo_Symbol\tEntrez_Gene_Id\tTCGA-AA-0001-01\tTCGA-AA-0002-01\nTP53\t7157\t0.1\t0.8\n")
    (study / "data_mutations.txt").write_text(
        "Hugo_Symbol\tVariant_Classification\tTumor_Sample_Barcode\n"
        "TP53\tMissense_Mutation\tTCGA-AA-0001-01\nKRAS\tSilent\tTCGA-AA-0002-01\n")
    return study
