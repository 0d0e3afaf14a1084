"""Every reader on files in the real layouts, and the errors they give on broken files."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from pmx.cohorts.readers import (
    NonNumericError,
    cbioportal_data_files,
    mcat_clinical,
    mcat_omics,
    mcat_slides,
    read_cbioportal_clinical,
    read_cbioportal_mutations,
    read_clinical_table,
    read_gdc_clinical,
    read_h5ad,
    read_matrix,
    read_mcat_table,
    read_methylation_beta,
    read_mirna_quantification,
    read_sample_sheet,
    read_star_counts,
    read_tcga_cdr,
)
from pmx.cohorts.validation import ValidationReport
from _cohort_inputs import cbioportal_study as _cbioportal, mcat_table as _mcat
from pmx.errors import DataError


# ---- GDC per-sample files ----------------------------------------------------------------------

def test_star_counts_real_gdc_file(testdata):
    path = testdata / "star_gene_counts_sample.tsv"
    counts = read_star_counts(path)
    raw = pd.read_csv(path, sep="\t", comment="#")
    genes = raw[~raw["gene_id"].str.startswith("N_")]
    assert not any(name.startswith("N_") for name in counts.index)
    assert counts["TSPAN6"] == 429 and counts["TNMD"] == 2
    assert counts.sum() == genes["unstranded"].sum()  # N_* rows excluded, nothing lost
    assert counts.index.is_unique and len(counts) == genes["gene_name"].nunique()
    duplicated = genes["gene_name"][genes["gene_name"].duplicated()].iloc[0]  # PAR_Y copy
    assert counts[duplicated] == genes.loc[genes["gene_name"] == duplicated, "unstranded"].sum()
    by_id = read_star_counts(path, feature="gene_id")
    assert len(by_id) == len(genes) and by_id["ENSG00000000003.15"] == 429
    tpm = read_star_counts(path, value="tpm_unstranded", feature="gene_id")
    assert tpm.sum() == pytest.approx(genes["tpm_unstranded"].sum())


def test_star_counts_errors(tmp_path, testdata):
    with pytest.raises(DataError, match="not a column"):
        read_star_counts(testdata / "star_gene_counts_sample.tsv", value="counts")
    bad = tmp_path / "bad.tsv"
    bad.write_text("gene\tcount\nA\t1\n")
    with pytest.raises(DataError, match="lacks column"):
        read_star_counts(bad)
    text = (testdata / "star_gene_counts_sample.tsv").read_text().replace("\t429\t", "\tlots\t", 1)
    bad.write_text(text)
    with pytest.raises(NonNumericError, match="TSPAN6='lots'"):
        read_star_counts(bad)


def test_mirna_quantification(tmp_path):
    path = tmp_path / "x.mirbase21.mirnas.quantification.txt"
    path.write_text("miRNA_ID\tread_count\treads_per_million_miRNA_mapped\tcross-mapped\n"
                    "hsa-let-7a-1\t9000\t30000.0\tN\nhsa-mir-21\t21000\t70000.0\tY\n")
    assert read_mirna_quantification(path).to_dict() == {"hsa-let-7a-1": 9000, "hsa-mir-21": 21000}
    rpm = read_mirna_quantification(path, "reads_per_million_miRNA_mapped")
    assert rpm["hsa-mir-21"] == 70000.0
    iso = tmp_path / "iso.txt"
    iso.write_text("miRNA_ID\tisoform_coords\tread_count\n")
    with pytest.raises(DataError, match="isoform"):
        read_mirna_quantification(iso, "reads_per_million_miRNA_mapped")


def test_methylation_beta_two_columns_and_legacy_header(tmp_path):
    gdc = tmp_path / "a.level3betas.txt"
    gdc.write_text("cg00000029\t0.512\ncg00000108\tNA\ncg00000109\t0.03\n")
    beta = read_methylation_beta(gdc)
    assert beta["cg00000029"] == 0.512 and np.isnan(beta["cg00000108"]) and len(beta) == 3
    legacy = tmp_path / "legacy.txt"
    legacy.write_text("Composite Element REF\tBeta_value\tGene_Symbol\ncg1\t0.2\tA\ncg2\t0.9\tB\n")
    assert read_methylation_beta(legacy).to_dict() == {"cg1": 0.2, "cg2": 0.9}
    one = tmp_path / "one.txt"
    one.write_text("cg1\ncg2\n")
    with pytest.raises(DataError, match="two tab-separated columns"):
        read_methylation_beta(one)


def test_sample_sheet(tmp_path):
    path = tmp_path / "gdc_sample_sheet.tsv"
    path.write_text("File ID\tFile Name\tData Category\tData Type\tProject ID\tCase ID\tSample ID\tSample Type\n"
                    "f1\ta.tsv\tTranscriptome Profiling\tGene Expression Quantification\tTCGA-X\t"
                    "TCGA-AA-0001, TCGA-AA-0001\tTCGA-AA-0001-01A, TCGA-AA-0001-01A\tPrimary Tumor, Primary Tumor\n")
    sheet = read_sample_sheet(path)
    assert sheet.loc[0, ["file_name", "case_id", "sample_id"]].tolist() == ["a.tsv", "TCGA-AA-0001", "TCGA-AA-0001-01A"]


# ---- clinical tables ---------------------------------------------------------------------------

def test_gdc_clinical_legacy_layout_with_placeholders(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text(
        "case_id\tcase_submitter_id\tproject_id\tvital_status\tdays_to_death\tdays_to_last_follow_up\ttreatment_type\n"
        "u1\tTCGA-AA-0001\tTCGA-BRCA\tDead\t300\t'--\tPharmaceutical Therapy, NOS\n"
        "u1\tTCGA-AA-0001\tTCGA-BRCA\tDead\t300\t120\tRadiation Therapy, NOS\n"
        "u2\tTCGA-AA-0002\tTCGA-BRCA\tAlive\t'--\t800\tPharmaceutical Therapy, NOS\n"
        "u2\tTCGA-AA-0002\tTCGA-BRCA\tAlive\t'--\t'--\tRadiation Therapy, NOS\n"
        "u3\tTCGA-AA-0003\tTCGA-BRCA\tNot Reported\t'--\t'--\tRadiation Therapy, NOS\n")
    frame = read_gdc_clinical(path, ValidationReport()).set_index("patient_id")
    assert frame.loc["TCGA-AA-0001", ["time", "event"]].tolist() == [300, 1]
    assert frame.loc["TCGA-AA-0002", ["time", "event"]].tolist() == [800, 0]
    assert np.isnan(frame.loc["TCGA-AA-0003", "event"])  # unknown vital status -> missing survival
    assert frame.loc["TCGA-AA-0001", "site"] == "AA" and frame.loc["TCGA-AA-0001", "cohort"] == "TCGA-BRCA"


def test_gdc_clinical_dotted_2024_layout(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text(
        "cases.case_id\tcases.submitter_id\tproject.project_id\tdemographic.vital_status\t"
        "demographic.days_to_death\tdiagnoses.days_to_last_follow_up\tfollow_ups.days_to_follow_up\n"
        "u1\tTCGA-AA-0001\tTCGA-LUAD\tAlive\t'--\t200\t'--\n"
        "u1\tTCGA-AA-0001\tTCGA-LUAD\tAlive\t'--\t'--\t650\n"
        "u2\tTCGA-AA-0002\tTCGA-LUAD\tDead\t95\t'--\t'--\n")
    frame = read_gdc_clinical(path, ValidationReport()).set_index("patient_id")
    assert frame.loc["TCGA-AA-0001", ["time", "event"]].tolist() == [650, 0]  # latest follow-up
    assert frame.loc["TCGA-AA-0002", ["time", "event"]].tolist() == [95, 1]
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(DataError, match="not a GDC clinical table"):
        read_gdc_clinical(bad, ValidationReport())


def test_tcga_cdr(tmp_path):
    path = tmp_path / "cdr.csv"
    path.write_text(",bcr_patient_barcode,type,OS,OS.time,PFI,PFI.time\n"
                    "1,TCGA-OR-A5J1,ACC,1,1355,1,754\n2,TCGA-OR-A5J2,ACC,0,2000,0,2000\n"
                    "3,TCGA-OR-A5J3,ACC,#N/A,#N/A,0,10\n")
    frame = read_tcga_cdr(path, ValidationReport()).set_index("patient_id")
    assert frame.loc["TCGA-OR-A5J1", ["time", "event"]].tolist() == [1355, 1]
    assert frame.loc["TCGA-OR-A5J2", "event"] == 0 and frame.loc["TCGA-OR-A5J1", "cohort"] == "TCGA-ACC"
    assert np.isnan(frame.loc["TCGA-OR-A5J3", "time"])
    pfi = read_tcga_cdr(path, ValidationReport(), endpoint="PFI").set_index("patient_id")
    assert pfi.loc["TCGA-OR-A5J1", "time"] == 754


def test_plain_table_months_and_censoring_flag(tmp_path):
    path = tmp_path / "surv.tsv"
    path.write_text("id\tmonths\tcensored\nP1\t10\t0\nP2\t2.5\t1\nP3\t4\tmaybe\n")
    report = ValidationReport()
    frame = read_clinical_table(path, report, id_column="id", time_column="months", event_column="censored",
                                event_meaning="censored", time_unit="months").set_index("patient_id")
    assert frame.loc["P1", "time"] == pytest.approx(304.375) and frame.loc["P1", "event"] == 1
    assert frame.loc["P2", "event"] == 0
    assert report.codes("error") == ["bad-event"] and report.errors[0].patients == ["P3"]
    with pytest.raises(DataError, match="no column"):
        read_clinical_table(path, ValidationReport(), id_column="patient")


# ---- MCAT / PORPOISE ---------------------------------------------------------------------------

def test_mcat_table(tmp_path):
    table = read_mcat_table(_mcat(tmp_path))
    report = ValidationReport()
    clinical = mcat_clinical(table, report).set_index("patient_id")
    assert report.ok and len(clinical) == 2
    assert clinical.loc["TCGA-2F-A9KO", "event"] == 1  # censorship 0 = death observed
    assert clinical.loc["TCGA-2F-A9KP", "event"] == 0
    assert clinical.loc["TCGA-2F-A9KO", "time"] == pytest.approx(24.11 * 30.4375)
    slides = mcat_slides(table)
    assert len(slides) == 3 and set(slides["patient_id"]) == {"TCGA-2F-A9KO", "TCGA-2F-A9KP"}
    omics = mcat_omics(table)
    assert set(omics) == {"rna", "cnv", "mutation"}
    assert list(omics["cnv"].columns) == ["TP53", "KRAS"]
    assert omics["rna"].loc["TCGA-2F-A9KP", "KRAS"] == 0.8 and omics["mutation"].shape == (2, 1)


# ---- cBioPortal --------------------------------------------------------------------------------

def test_cbioportal_study(tmp_path):
    study = _cbioportal(tmp_path)
    report = ValidationReport()
    clinical = read_cbioportal_clinical(study, report).set_index("patient_id")
    assert clinical.loc["TCGA-AA-0001", ["event"]].tolist() == [1]
    assert clinical.loc["TCGA-AA-0001", "time"] == pytest.approx(12 * 30.4375)
    assert clinical.loc["TCGA-AA-0002", "event"] == 0 and np.isnan(clinical.loc["TCGA-AA-0003", "time"])
    assert clinical.loc["TCGA-AA-0001", "cohort"] == "blca_tcga"
    files = cbioportal_data_files(study)
    assert files["rna"].name == "data_mrna_seq_v2_rsem.txt"  # z-scores skipped
    assert set(files) == {"rna", "methylation", "mutation"}
    rna = read_matrix(files["rna"], orientation="features-x-samples")
    assert rna.loc["TCGA-AA-0001-01", "TP53"] == pytest.approx((100.5 + 300.5) / 2)  # duplicate symbol averaged
    assert "ENTREZ:9999" in rna.columns and np.isnan(rna.loc["TCGA-AA-0002-01", "KRAS"])
    mutations = read_cbioportal_mutations(files["mutation"])
    assert mutations.loc["TCGA-AA-0001-01", "TP53"] == 1
    assert mutations.loc["TCGA-AA-0002-01"].sum() == 0  # silent mutations do not count


# ---- plain matrices and AnnData ------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet"])
def test_matrix_both_orientations(tmp_path, suffix):
    values = pd.DataFrame([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]], index=["TCGA-AA-0001-01A", "TCGA-AA-0002-01A"],
                          columns=["g1", "g2", "g3"])
    for name, frame in (("rows", values), ("cols", values.T)):
        path = tmp_path / f"{name}.{suffix}"
        out = frame.reset_index().rename(columns={"index": "id"})
        if suffix == "parquet":
            out.to_parquet(path)
        else:
            out.to_csv(path, sep="," if suffix == "csv" else "\t", index=False)
        got = read_matrix(path)  # orientation auto: barcodes say which axis holds samples
        pd.testing.assert_frame_equal(got, values, check_names=False)


def test_matrix_orientation_with_known_ids_and_errors(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("feature,P1,P2\nf1,1,2\nf2,3,4\n")
    got = read_matrix(path, known_ids={"P1", "P2"})
    assert list(got.index) == ["P1", "P2"] and got.loc["P2", "f2"] == 4
    with pytest.raises(DataError, match="cannot tell whether samples are rows or columns"):
        read_matrix(path)
    explicit = read_matrix(path, orientation="features-x-samples")
    assert explicit.loc["P1", "f2"] == 3
    path.write_text("feature,P1,P2\nf1,1,two\n")
    with pytest.raises(NonNumericError, match="two"):
        read_matrix(path, orientation="features-x-samples")


def test_h5ad(tmp_path):
    anndata = pytest.importorskip("anndata")
    adata = anndata.AnnData(X=np.array([[1.0, 0.0], [2.0, 5.0]], dtype=np.float32),
                            obs=pd.DataFrame({"case": ["TCGA-AA-0001", "TCGA-AA-0002"]}, index=["s1", "s2"]),
                            var=pd.DataFrame(index=["TP53", "KRAS"]))
    path = tmp_path / "rna.h5ad"
    adata.write_h5ad(path)
    by_name = read_h5ad(path)
    assert list(by_name.index) == ["s1", "s2"] and by_name.loc["s2", "KRAS"] == 5
    by_column = read_h5ad(path, id_column="case")
    assert list(by_column.index) == ["TCGA-AA-0001", "TCGA-AA-0002"]
    with pytest.raises(DataError, match="obs has no column"):
        read_h5ad(path, id_column="nope")
