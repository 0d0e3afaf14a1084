"""The synthetic demo cohort: real file layouts, OpenSlide-readable slides, planted signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
import pytest

from pmx.cohorts import load_cohort, load_manifest
from pmx.cohorts.demo import DemoSettings, demo_truth, generate_demo_cohort
from pmx.cohorts.readers import read_methylation_beta, read_mirna_quantification, read_star_counts
from pmx.errors import DataError


def _files(root: Path, modality: str) -> list[Path]:
    return sorted((root / "omics" / modality).glob("*/*"))


def test_writes_a_complete_cohort(small_demo):
    root = small_demo.root
    for name in ("manifest.toml", "clinical.tsv", "truth.json", "truth.tsv", "planted.json", "signatures.csv",
                 "omics/gdc_sample_sheet.tsv"):
        assert (root / name).is_file(), name
    manifest = load_manifest(small_demo.manifest)
    assert manifest.clinical.format == "gdc-clinical"
    assert [o.modality for o in manifest.omics] == ["rna", "mirna", "methylation"]
    slides = sorted((root / "slides").glob("*.svs"))
    assert len(slides) == small_demo.n_slides >= 40
    assert all(s.name.startswith("TCGA-") and "-01Z-00-DX" in s.name for s in slides)


def test_slides_open_in_openslide_as_aperio_pyramids(small_demo):
    path = sorted((small_demo.root / "slides").glob("*.svs"))[0]
    with openslide.OpenSlide(str(path)) as slide:
        assert slide.properties["openslide.vendor"] == "aperio"
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(0.5)
        assert float(slide.properties["openslide.objective-power"]) == 20
        assert slide.level_count == 3
        assert slide.level_dimensions[0] == (512, 384)
        assert slide.level_downsamples[1] == pytest.approx(4.0)
        pixels = np.asarray(slide.read_region((0, 0), 0, slide.dimensions).convert("RGB")).astype(int)
    background = (pixels.min(axis=2) > 215).mean()
    stained = ((pixels[..., 0] - pixels[..., 1]) > 15).mean()  # pink/purple: eosin and hematoxylin
    assert 0.15 < background < 0.85, background  # white glass around the tissue
    assert stained > 0.15, stained


def test_star_files_mimic_the_real_gdc_layout(small_demo, testdata):
    real = (testdata / "star_gene_counts_sample.tsv").read_text().splitlines()
    ours = _files(small_demo.root, "rna")[0].read_text().splitlines()
    assert ours[0] == real[0] == "# gene-model: GENCODE v36"
    assert ours[1] == real[1]
    assert [line.split("\t")[0] for line in ours[2:6]] == [line.split("\t")[0] for line in real[2:6]]
    for ours_line, real_line in zip(ours[2:6], real[2:6]):  # N_* rows: counts only, same empty cells
        assert [bool(c) for c in ours_line.split("\t")] == [bool(c) for c in real_line.split("\t")]
    assert {len(line.split("\t")) for line in ours[1:]} == {9}
    frame = pd.read_csv(_files(small_demo.root, "rna")[0], sep="\t", comment="#")
    genes = frame[~frame["gene_id"].str.startswith("N_")]
    assert genes["tpm_unstranded"].sum() == pytest.approx(1e6, rel=1e-6)
    assert (genes["unstranded"] >= 0).all() and genes["unstranded"].dtype.kind == "i"
    counts = read_star_counts(_files(small_demo.root, "rna")[0])
    assert len(counts) == 300


def test_mirna_and_methylation_files_read_back(small_demo):
    mirna = read_mirna_quantification(_files(small_demo.root, "mirna")[0])
    rpm = read_mirna_quantification(_files(small_demo.root, "mirna")[0], "reads_per_million_miRNA_mapped")
    assert len(mirna) == 120 and rpm.sum() == pytest.approx(1e6, rel=1e-6)
    first_line = _files(small_demo.root, "methylation")[0].read_text().splitlines()[0]
    assert first_line.startswith("cg") and len(first_line.split("\t")) == 2  # no header
    betas = pd.concat([read_methylation_beta(p) for p in _files(small_demo.root, "methylation")[:10]])
    assert betas.between(0, 1).sum() == betas.notna().sum()


def test_truth_and_planted_features(small_demo):
    truth = json.loads((small_demo.root / "truth.json").read_text())
    c = truth["c_index"]
    assert set(c) >= {"oracle", "slide", "omics", "rna", "mirna", "methylation", "multimodal"}
    assert c["multimodal"] > c["slide"] and c["multimodal"] > c["omics"]
    assert 0.3 <= truth["censoring_fraction"] <= 0.6
    planted = json.loads((small_demo.root / "planted.json").read_text())
    cohort = load_cohort(small_demo.manifest, inspect_slides=False)
    for modality in ("rna", "mirna", "methylation"):
        features = planted[modality]["features"]
        assert len(features) >= 20
        assert set(features) <= set(cohort.omics[modality].features)
    assert set(planted["rna"]["by_factor"]) == {"rna_program", "grade", "immune"}
    table = pd.read_csv(small_demo.root / "truth.tsv", sep="\t")
    assert len(table) == 40 and {"risk", "risk_slide", "risk_omics", "time", "event"} <= set(table.columns)


def test_default_cohort_has_the_promised_signal():
    truth = demo_truth(DemoSettings())
    assert truth["n_patients"] == 150
    assert truth["c_index"]["oracle"] >= 0.75
    assert truth["c_index"]["multimodal"] > max(truth["c_index"]["slide"], truth["c_index"]["omics"]) + 0.03
    assert 0.3 <= truth["censoring_fraction"] <= 0.6
    for seed in range(1, 6):  # not a lucky seed
        other = demo_truth(DemoSettings(seed=seed))["c_index"]
        assert other["oracle"] >= 0.75 and other["multimodal"] > max(other["slide"], other["omics"])


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_cohort_whatever_the_workers(tmp_path):
    tiny = dict(patients=12, seed=11, slide_size=256, genes=150, mirnas=100, cpgs=150)
    one = generate_demo_cohort(tmp_path / "a", DemoSettings(**tiny, workers=1), progress=False)
    two = generate_demo_cohort(tmp_path / "b", DemoSettings(**tiny, workers=2), progress=False)
    a, b = _tree(one.root), _tree(two.root)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k] and k != "truth.json"] == []  # slides and omics byte-identical
    truth_a, truth_b = json.loads(a["truth.json"]), json.loads(b["truth.json"])
    truth_a["settings"].pop("workers"), truth_b["settings"].pop("workers")
    assert truth_a == truth_b
    assert demo_truth(DemoSettings(**{**tiny, "seed": 12}))["c_index"] != truth_a["c_index"]


def test_harrell_c_matches_scikit_survival():
    from sksurv.metrics import concordance_index_censored

    from pmx.cohorts.demo.signal import harrell_c

    rng = np.random.default_rng(0)
    for n in (60, 400):
        time = rng.integers(1, 40, n).astype(float)  # many tied times
        event = rng.random(n) < 0.6
        risk = rng.integers(0, 6, n).astype(float)  # many tied risks
        expected = concordance_index_censored(event, time, risk)[0]
        assert harrell_c(risk, time, event, chunk=7) == pytest.approx(expected, abs=1e-12)


def test_missing_modalities(tmp_path):
    settings = DemoSettings(patients=60, seed=5, slide_size=256, genes=150, mirnas=100, cpgs=150, missing=0.3,
                            workers=1)
    demo = generate_demo_cohort(tmp_path / "m", settings, progress=False)
    truth = pd.read_csv(demo.root / "truth.tsv", sep="\t").set_index("patient_id")
    flags = truth[["has_slide", "has_rna", "has_mirna", "has_methylation"]]
    assert flags.sum(axis=1).min() >= 1  # nobody loses everything
    assert 0.15 < 1 - flags.to_numpy().mean() < 0.45
    cohort = load_cohort(demo.manifest, inspect_slides=False)
    available = cohort.availability()
    for modality in ("slide", "rna", "mirna", "methylation"):
        assert available[modality] == set(truth.index[truth[f"has_{modality}"] == 1]), modality
    summary = cohort.summary()
    assert summary["patients"] == 60 and summary["complete_patients"] < 60
    assert sum(c["patients"] for c in summary["combinations"]) == 60


def test_bad_settings_are_refused(tmp_path, small_demo):
    with pytest.raises(DataError, match="--missing"):
        generate_demo_cohort(tmp_path / "x", DemoSettings(missing=1.5))
    with pytest.raises(DataError, match="already holds a cohort"):
        generate_demo_cohort(small_demo.root, DemoSettings(patients=10))
