"""The planted signal is in the data itself, not only in truth.json: simple features read back
from the slide files and the omics files predict survival, planted features are recoverable, and
slides + omics together beat either alone."""

from __future__ import annotations

import json

import numpy as np
import openslide
import pytest
from sklearn.decomposition import PCA
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored

from pmx.cohorts import load_cohort
from pmx.cohorts.demo.signal import harrell_c


@pytest.fixture(scope="module")
def cohort(demo_150):
    return load_cohort(demo_150.manifest)


_OPTICAL_DENSITY = (-np.log((np.arange(256) + 1) / 256)).astype(np.float32)


def _slide_features(path: str) -> list[float]:
    """Dark (nuclear) pixel share, stain balance and fine-texture energy inside the tissue."""
    with openslide.OpenSlide(path) as slide:
        rgb = np.asarray(slide.read_region((0, 0), 0, slide.dimensions).convert("RGB"))
    od = _OPTICAL_DENSITY[rgb]
    total = od.sum(axis=2)
    tissue = total > 0.3
    dark = (total > 1.2) & tissue
    green = od[..., 1]
    detail = np.abs(4 * green[1:-1, 1:-1] - green[:-2, 1:-1] - green[2:, 1:-1] - green[1:-1, :-2] - green[1:-1, 2:])
    inside = od[tissue]
    return [dark.sum() / tissue.sum(), inside[:, 0].mean() / inside[:, 1].mean(),
            inside[:, 2].mean() / inside[:, 1].mean(), float(detail[tissue[1:-1, 1:-1]].mean())]


def _cv_c_index(x: np.ndarray, event: np.ndarray, time: np.ndarray) -> float:
    """5-fold CV Harrell C of a ridge Cox model fit on the training folds only."""
    y = np.array(list(zip(event.astype(bool), time)), dtype=[("e", bool), ("t", float)])
    risk = np.zeros(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(x, event):
        scaler = StandardScaler().fit(x[train])
        model = CoxPHSurvivalAnalysis(alpha=1.0).fit(scaler.transform(x[train]), y[train])
        risk[test] = model.predict(scaler.transform(x[test]))
    return concordance_index_censored(y["e"], y["t"], risk)[0]


def _log_cpm(values: np.ndarray) -> np.ndarray:
    return np.log1p(values / values.sum(axis=1, keepdims=True) * 1e6)


def test_planted_genes_are_recoverable_from_survival(cohort, demo_150):
    planted = set(json.loads((demo_150.root / "planted.json").read_text())["rna"]["features"])
    rna = cohort.omics["rna"]
    patients = cohort.patients.set_index("patient_id").loc[rna.patients]
    expression = _log_cpm(rna.values.astype(float))
    event, time = patients["event"].to_numpy().astype(bool), patients["time"].to_numpy()
    strength = [abs(harrell_c(expression[:, j], time, event) - 0.5) for j in range(expression.shape[1])]
    top = {rna.features[j] for j in np.argsort(strength)[::-1][:50]}
    chance = 50 * len(planted) / len(rna.features)
    assert len(top & planted) >= 3 * chance, (len(top & planted), chance)


def test_each_modality_beats_chance_and_together_they_beat_each(cohort, demo_150):
    ids = cohort.patient_ids
    patients = cohort.patients.set_index("patient_id")
    event, time = patients["event"].to_numpy(), patients["time"].to_numpy()
    first_slide = cohort.slides.groupby("patient_id")["path"].first()
    slides = np.array([_slide_features(first_slide[p]) for p in ids])
    planted = json.loads((demo_150.root / "planted.json").read_text())
    blocks = []
    for modality in ("rna", "mirna", "methylation"):
        data = cohort.omics[modality]
        frame = data.frame().loc[ids]
        values = _log_cpm(frame.to_numpy()) if data.kind == "counts" else frame.to_numpy()
        columns = [data.features.index(f) for f in planted[modality]["features"]]
        block = np.nan_to_num(values[:, columns], nan=np.nanmean(values))
        blocks.append(PCA(5, random_state=0).fit_transform(StandardScaler().fit_transform(block)))
    omics = np.hstack(blocks)
    c_slide = _cv_c_index(slides, event, time)
    c_omics = _cv_c_index(omics, event, time)
    c_both = _cv_c_index(np.hstack([slides, omics]), event, time)
    assert c_slide > 0.56, c_slide
    assert c_omics > 0.6, c_omics
    assert c_both > max(c_slide, c_omics) + 0.02, (c_slide, c_omics, c_both)
    truth = json.loads((demo_150.root / "truth.json").read_text())["c_index"]
    assert c_both <= truth["oracle"] + 0.03  # nothing learns more than the true risk allows
