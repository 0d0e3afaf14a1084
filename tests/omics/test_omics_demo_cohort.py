"""The selectors on the synthetic demo cohort (pmx.cohorts): planted features beat chance.

The demo generator writes the planted omics features to planted.json; a fold's training part
(51 of 80 patients) goes through each selector and the overlap with the planted set is
compared with what a random pick of the same size would get.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

cohorts = pytest.importorskip("pmx.cohorts", reason="the demo-cohort generator (pmx.cohorts) is not available")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from pmx.cohorts import load_cohort
    from pmx.cohorts.demo.generator import DemoSettings, generate_demo_cohort
    from pmx.evaluation.splits import fold_members, make_folds

    root = tmp_path_factory.mktemp("demo")
    made = generate_demo_cohort(root, DemoSettings(patients=80, seed=0, slide_size=256, genes=300, mirnas=100,
                                                   cpgs=300, workers=1), progress=False, overwrite=True)
    cohort = load_cohort(made.manifest, inspect_slides=False)
    planted = json.loads((made.root / "planted.json").read_text())
    omics = {k: v.frame().astype(np.float64) for k, v in cohort.omics.items()}
    survival = cohort.patients.set_index("patient_id")[["time", "event"]]
    folds = make_folds(list(survival.index), survival["event"].to_numpy(), n_folds=5, seed=0)
    members = fold_members(folds, 0)
    return omics, survival, planted, members, made.root


def _hits(selected, planted, kind, k):
    real = [f for f in selected if not f.startswith("__pad_")]
    hits = len(set(real) & set(planted[kind]["features"]))
    chance = k * len(planted[kind]["features"]) / planted[kind]["n_features"]
    return hits, chance


def test_deseq2_rsf_beats_chance_on_the_demo_cohort(demo):
    from pmx.omics.deseq2_rsf import DESeq2RSFSelector

    omics, survival, planted, members, _ = demo
    selector = DESeq2RSFSelector(top_k=30, n_estimators=50).fit(omics, survival.loc[members["train"]])
    total_hits = total_chance = 0.0
    for kind in ("rna", "mirna", "methylation"):
        hits, chance = _hits(selector.selected_features_[kind], planted, kind, 30)
        total_hits, total_chance = total_hits + hits, total_chance + chance
        if kind != "mirna":  # the demo's miRNA programme is weak at 51 training patients
            assert hits >= 1.5 * chance, (kind, hits, chance, selector.report_[kind])
    assert total_hits >= 1.5 * total_chance
    # every patient (test fold included) is transformed with the fold's fitted selector
    out = selector.transform(omics)
    assert {k: v.shape[1] for k, v in out.items()} == {"rna": 30, "mirna": 30, "methylation": 30}
    assert set(out["rna"].index) >= set(members["test"])


def test_quantile_normal_variance_filter_beats_chance_on_the_demo_cohort(demo):
    from pmx.omics.quantile_normal import QuantileNormalSelector

    omics, survival, planted, members, _ = demo
    selector = QuantileNormalSelector(max_features=30).fit(omics, survival.loc[members["train"]])
    for kind in ("rna", "mirna", "methylation"):
        hits, chance = _hits(selector.selected_features_[kind], planted, kind, 30)
        assert hits >= 2 * chance, (kind, hits, chance)


def test_gene_families_on_the_demo_signatures(demo):
    from pmx.omics.gene_families import GeneFamiliesSelector, load_signatures

    omics, survival, _, members, root = demo
    families = load_signatures(root / "signatures.csv")
    selector = GeneFamiliesSelector(signatures=str(root / "signatures.csv"))
    out = selector.fit({"rna": omics["rna"]}, survival.loc[members["train"]]).transform({"rna": omics["rna"]})
    assert list(out) == list(families)
    for family, genes in families.items():
        expected = sorted(f"{g}_rnaseq" for g in genes if g in omics["rna"].columns)
        assert selector.selected_features_[family] == expected
        assert np.allclose(out[family].loc[members["train"]].mean(axis=0), 0.0, atol=1e-9)
