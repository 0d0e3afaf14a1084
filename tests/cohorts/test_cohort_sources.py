"""Manifests over each kind of source (MCAT, cBioPortal, TCGA-CDR, Parquet/AnnData matrices,
GDC files linked by sample sheet) resolve into linked, validated cohorts."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from _cohort_inputs import cbioportal_study as _cbioportal, mcat_table as _mcat

from pmx.cohorts import load_cohort


def test_mcat_manifest_with_slides(tmp_path, testdata):
    table = _mcat(tmp_path)
    slides = tmp_path / "wsi"
    slides.mkdir()
    for name in ("TCGA-2F-A9KO-01Z-00-DX1.195576CF.svs", "TCGA-2F-A9KO-01Z-00-DX2.AAAA.svs",
                 "TCGA-2F-A9KP-01Z-00-DX1.3BBB.svs"):
        shutil.copy(testdata / "CMU-1-Small-Region-pyramid.svs", slides / name)
    (tmp_path / "manifest.toml").write_text(
        f'name = "blca"\n[clinical]\nformat = "mcat"\npath = "{table.name}"\n'
        f'[[slides]]\nformat = "mcat"\npath = "{table.name}"\nslide_dir = "wsi"\n'
        f'[[omics]]\nformat = "mcat"\npath = "{table.name}"\n')
    cohort = load_cohort(tmp_path / "manifest.toml")
    assert cohort.report.ok, cohort.report.format()
    assert cohort.patient_ids == ["TCGA-2F-A9KO", "TCGA-2F-A9KP"]
    assert sorted(cohort.slides["slide_id"]) == ["TCGA-2F-A9KO-01Z-00-DX1.195576CF", "TCGA-2F-A9KO-01Z-00-DX2.AAAA",
                                                 "TCGA-2F-A9KP-01Z-00-DX1.3BBB"]
    assert set(cohort.omics) == {"rna", "cnv", "mutation"}
    assert cohort.omics["mutation"].kind == "binary" and cohort.omics["cnv"].kind == "continuous"
    assert cohort.omics["rna"].kind == "continuous"  # MCAT's _rnaseq columns are z-scores
    assert set(cohort.patients["cohort"]) == {"blca"}


def test_cbioportal_manifest(tmp_path):
    study = _cbioportal(tmp_path)
    (study / "data_clinical_sample.txt").write_text(
        "#a\t\n#b\t\n#c\t\n#d\t\nSAMPLE_ID\tPATIENT_ID\nTCGA-AA-0001-01\tTCGA-AA-0001\nTCGA-AA-0002-01\tTCGA-AA-0002\n")
    (tmp_path / "manifest.toml").write_text(
        '[clinical]\nformat = "cbioportal"\npath = "blca_tcga"\n'
        '[[omics]]\nformat = "cbioportal"\npath = "blca_tcga"\n')
    cohort = load_cohort(tmp_path / "manifest.toml")
    assert not cohort.report.errors, cohort.report.format()
    assert cohort.patient_ids == ["TCGA-AA-0001", "TCGA-AA-0002"]  # TCGA-AA-0003 has no OS_MONTHS
    assert cohort.report.find("missing-survival")[0].patients == ["TCGA-AA-0003"]
    assert set(cohort.omics) == {"rna", "methylation", "mutation"}
    rna = cohort.omics["rna"].frame()
    assert rna.loc["TCGA-AA-0002", "TP53"] == pytest.approx(300.0)
    assert cohort.omics["rna"].kind == "continuous"  # RSEM values are not raw counts
    assert set(cohort.patients["cohort"]) == {"blca_tcga"}


def test_cdr_with_parquet_and_h5ad_matrices(tmp_path):
    anndata = pytest.importorskip("anndata")
    patients = ["TCGA-OR-A5J1", "TCGA-OR-A5J2", "TCGA-OR-A5J3"]
    (tmp_path / "cdr.tsv").write_text("bcr_patient_barcode\ttype\tOS\tOS.time\n"
                                      + "".join(f"{p}\tACC\t{i % 2}\t{100 * (i + 1)}\n" for i, p in enumerate(patients)))
    rng = np.random.default_rng(1)
    cnv = pd.DataFrame(rng.normal(size=(4, 3)), index=["TP53", "KRAS", "EGFR", "MYC"],
                       columns=[f"{p}-01A" for p in patients])
    cnv.rename_axis("gene").reset_index().to_parquet(tmp_path / "cnv.parquet")
    counts = rng.poisson(50, size=(3, 5)).astype(np.float32)
    adata = anndata.AnnData(X=counts, obs=pd.DataFrame(index=[f"{p}-01A-11R" for p in patients]),
                            var=pd.DataFrame(index=[f"G{i}" for i in range(5)]))
    adata.write_h5ad(tmp_path / "rna.h5ad")
    (tmp_path / "manifest.toml").write_text(
        '[clinical]\nformat = "tcga-cdr"\npath = "cdr.tsv"\n'
        '[[omics]]\nmodality = "cnv"\nformat = "matrix"\npath = "cnv.parquet"\n'
        '[[omics]]\nmodality = "rna"\nformat = "h5ad"\npath = "rna.h5ad"\n')
    cohort = load_cohort(tmp_path / "manifest.toml")
    assert cohort.report.ok, cohort.report.format()
    assert set(cohort.patients["cohort"]) == {"TCGA-ACC"}
    np.testing.assert_allclose(cohort.omics["cnv"].frame().loc[patients[1]].to_numpy(),
                               cnv[f"{patients[1]}-01A"].to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(cohort.omics["rna"].values, counts)
    assert cohort.omics["rna"].kind == "counts"


def test_gdc_files_linked_by_sample_sheet_only(tmp_path, testdata):
    """UUID file names (as downloaded from the GDC) need the sample sheet; without it: an error."""
    folder = tmp_path / "rna" / "0b6f3a8e"
    folder.mkdir(parents=True)
    shutil.copy(testdata / "star_gene_counts_sample.tsv", folder / "5c2b.rna_seq.augmented_star_gene_counts.tsv")
    (tmp_path / "clinical.csv").write_text("patient_id,time,event\nTCGA-AA-0001,10,1\n")
    (tmp_path / "sheet.tsv").write_text("File ID\tFile Name\tCase ID\tSample ID\tSample Type\n"
                                        "0b6f3a8e\t5c2b.rna_seq.augmented_star_gene_counts.tsv\tTCGA-AA-0001\t"
                                        "TCGA-AA-0001-01A\tPrimary Tumor\n")
    base = '[clinical]\npath = "clinical.csv"\n[[omics]]\nmodality = "rna"\nformat = "gdc-star-counts"\npath = "rna"\n'
    (tmp_path / "manifest.toml").write_text(base + 'sample_sheet = "sheet.tsv"\n')
    cohort = load_cohort(tmp_path / "manifest.toml")
    assert cohort.report.ok and cohort.omics["rna"].samples == ["TCGA-AA-0001-01A"]
    (tmp_path / "manifest.toml").write_text(base)
    cohort = load_cohort(tmp_path / "manifest.toml")
    [finding] = cohort.report.find("unlinked-file")
    assert finding.level == "error" and "5c2b" in finding.files[0] and "sample_sheet" in finding.message
