"""gene-families (CMTA/MCAT): grouping by a signatures table, suffixes, fold-only scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmx.errors import ConfigError, DataError
from pmx.omics.gene_families import GeneFamiliesSelector, load_signatures

FAMILIES = {
    "Tumor Suppressor Genes": ["TP53", "PTEN", "RB1"],
    "Oncogenes": ["MYC", "KRAS", "TP53"],  # a gene in two families feeds both
    "Protein Kinases": ["EGFR", "BRAF"],
    "Cell Differentiation Markers": ["CD4"],
    "Transcription Factors": ["FOXA1", "GATA3", "NOTEXPRESSED"],
    "Cytokines and Growth Factors": ["IL6", "TGFB1"],
}
GENES = ["TP53", "PTEN", "RB1", "MYC", "KRAS", "EGFR", "BRAF", "CD4", "FOXA1", "GATA3", "IL6", "TGFB1",
         "ACTB", "GAPDH"]  # the last two are in no family


@pytest.fixture
def signatures(tmp_path):
    width = max(len(g) for g in FAMILIES.values())
    table = pd.DataFrame({k: v + [None] * (width - len(v)) for k, v in FAMILIES.items()})
    path = tmp_path / "signatures.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    ids = [f"P{i:03d}" for i in range(30)]
    rna = pd.DataFrame(rng.normal(5, 2, (30, len(GENES))), index=ids, columns=GENES)
    cnv = pd.DataFrame(rng.integers(-2, 3, (30, 4)).astype(float), index=ids, columns=["TP53", "MYC", "EGFR", "ACTB"])
    mut = pd.DataFrame(rng.integers(0, 2, (30, 2)).astype(float), index=ids, columns=["TP53", "KRAS"])
    survival = pd.DataFrame({"time": rng.uniform(1, 100, 30), "event": rng.random(30) < 0.5}, index=ids)
    return {"rna": rna, "cnv": cnv, "mutation": mut}, survival


def test_groups_follow_the_signatures_and_suffixes(signatures, data):
    omics, survival = data
    selector = GeneFamiliesSelector(signatures=str(signatures)).fit(omics, survival.iloc[:20])
    groups = selector.selected_features_
    assert list(groups) == list(FAMILIES)  # order of the table's columns
    assert groups["Tumor Suppressor Genes"] == sorted(
        ["TP53_rnaseq", "TP53_cnv", "TP53_mut", "PTEN_rnaseq", "RB1_rnaseq"])
    assert groups["Oncogenes"] == sorted(
        ["MYC_rnaseq", "MYC_cnv", "KRAS_rnaseq", "KRAS_mut", "TP53_rnaseq", "TP53_cnv", "TP53_mut"])
    assert groups["Transcription Factors"] == ["FOXA1_rnaseq", "GATA3_rnaseq"]
    used = {f for fs in groups.values() for f in fs}
    assert not any(f.startswith(("ACTB", "GAPDH")) for f in used)
    assert selector.report_["Oncogenes"]["by_type"] == {"rnaseq": 3, "cnv": 2, "mut": 2}


def test_standard_scaling_fit_on_training_patients_only(signatures, data):
    omics, survival = data
    train = list(survival.index[:20])
    selector = GeneFamiliesSelector(signatures=str(signatures)).fit(omics, survival.loc[train])
    out = selector.transform(omics)
    for family, frame in out.items():
        assert frame.shape == (30, len(selector.selected_features_[family]))
        raw = pd.concat([omics["rna"].add_suffix("_rnaseq"), omics["cnv"].add_suffix("_cnv"),
                         omics["mutation"].add_suffix("_mut")], axis=1)[frame.columns]
        mean, std = raw.loc[train].mean(), raw.loc[train].std(ddof=0).replace(0, 1.0)
        np.testing.assert_allclose(frame.to_numpy(), ((raw - mean) / std).to_numpy(), atol=1e-12)


def test_mcat_style_single_table_with_suffixes(signatures, data):
    omics, survival = data
    combined = pd.concat([omics["rna"].add_suffix("_rnaseq"), omics["cnv"].add_suffix("_cnv")], axis=1)
    a = GeneFamiliesSelector(signatures=str(signatures)).fit({"genomic": combined}, survival)
    b = GeneFamiliesSelector(signatures=str(signatures)).fit({"rna": omics["rna"], "cnv": omics["cnv"]}, survival)
    assert a.selected_features_ == b.selected_features_
    for family in a.selected_features_:
        pd.testing.assert_frame_equal(a.transform({"genomic": combined})[family],
                                      b.transform({"rna": omics["rna"], "cnv": omics["cnv"]})[family])


def test_leak_free_and_missing_type_filled_with_training_mean(signatures, data):
    omics, survival = data
    train = list(survival.index[:20])
    changed = {k: v.copy() for k, v in omics.items()}
    changed["rna"].iloc[25] = 1e6
    a = GeneFamiliesSelector(signatures=str(signatures)).fit(omics, survival.loc[train])
    b = GeneFamiliesSelector(signatures=str(signatures)).fit(changed, survival.loc[train])
    assert a.selected_features_ == b.selected_features_
    keep = [p for p in survival.index if p != survival.index[25]]
    for family, frame in a.transform(omics).items():
        pd.testing.assert_frame_equal(frame.loc[keep], b.transform(changed)[family].loc[keep])
    # a patient without CNV data: its CNV features are the training mean, i.e. 0 after scaling
    partial = dict(omics, cnv=omics["cnv"].drop(index="P029"))
    row = a.transform(partial)["Oncogenes"].loc["P029"]
    assert (row[["MYC_cnv", "TP53_cnv"]] == 0).all()


def test_signature_errors(tmp_path, signatures, data):
    omics, survival = data
    with pytest.raises(ConfigError, match=r"--set signatures=PATH"):
        GeneFamiliesSelector().fit(omics, survival)
    with pytest.raises(DataError, match=r"does not exist"):
        GeneFamiliesSelector(signatures=str(tmp_path / "nope.csv")).fit(omics, survival)
    ensembl = {"rna": omics["rna"].set_axis([f"ENSG{i:011d}" for i in range(len(GENES))], axis=1)}
    with pytest.raises(DataError, match=r"gene family 'Tumor Suppressor Genes'.*matches no feature.*Ensembl"):
        GeneFamiliesSelector(signatures=str(signatures)).fit(ensembl, survival)
    with pytest.raises(DataError, match=r"omics 'methylation'.*no suffix configured"):
        GeneFamiliesSelector(signatures=str(signatures)).fit({"methylation": omics["rna"]}, survival)
    relaxed = GeneFamiliesSelector(signatures=str(signatures), allow_empty_families=True)
    relaxed.fit({"rna": omics["rna"][["TP53", "MYC"]]}, survival)
    assert relaxed.selected_features_["Protein Kinases"] == []
    assert load_signatures(signatures)["Transcription Factors"] == ["FOXA1", "GATA3", "NOTEXPRESSED"]
