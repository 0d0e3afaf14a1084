"""quantile-normal (impuTMAE): the exact transform chain, fold-only fitting, padding, leak-freedom."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import QuantileTransformer

from pmx.errors import DataError
from pmx.omics.quantile_normal import QuantileNormalSelector, upper_quartile_normalise
from pmx.omics.synthetic import make_synthetic_omics


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_omics(n_patients=60, n_genes=400, n_methylation=300, n_planted=20, effect=1.0, seed=3)


@pytest.fixture(scope="module")
def split(cohort):
    ids = list(cohort.survival.index)
    return ids[:45], ids[45:]


def test_matches_the_reference_chain(cohort, split):
    train, test = split
    rna = cohort.omics["rna"]
    selector = QuantileNormalSelector(patch_size=64).fit({"rna": rna}, cohort.survival.loc[train])
    out = selector.transform({"rna": rna})["rna"]

    # reference: log1p -> / per-patient 75th percentile of non-zero values -> zero variance (train)
    logged = np.log1p(rna.to_numpy(dtype=float))
    q75 = np.array([np.percentile(row[row > 0], 75) for row in logged])
    uq = logged / q75[:, None]
    is_train = rna.index.isin(train)
    keep = uq[is_train].var(axis=0) > 0
    qt = QuantileTransformer(n_quantiles=45, output_distribution="normal", random_state=0).fit(uq[is_train][:, keep])
    normal = qt.transform(uq[:, keep])
    lo, hi = normal[is_train].min(axis=0), normal[is_train].max(axis=0)
    expected = np.clip((normal - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)

    width = int(keep.sum())
    assert selector.selected_features_["rna"][:width] == rna.columns[keep].tolist()
    np.testing.assert_allclose(out.to_numpy()[:, :width], expected, atol=1e-12)
    # zero padding to a multiple of the patch size
    assert out.shape[1] % 64 == 0 and out.shape[1] - width < 64
    assert (out.to_numpy()[:, width:] == 0).all()
    # training patients span [0, 1] per feature; test patients are clipped into it
    train_values = out.loc[train].to_numpy()[:, :width]
    assert train_values.min() == 0.0 and train_values.max() == 1.0
    assert out.loc[test].to_numpy().min() >= 0.0 and out.loc[test].to_numpy().max() <= 1.0


def test_default_patch_sizes_and_methylation_not_logged(cohort, split):
    train, _ = split
    selector = QuantileNormalSelector().fit(cohort.omics, cohort.survival.loc[train])
    out = selector.transform(cohort.omics)
    assert out["rna"].shape[1] == 512  # impuTMAE: RNA patch 512
    assert out["methylation"].shape[1] == 1024  # methylation patch 1024
    assert not selector._fits["methylation"].logged and selector._fits["rna"].logged
    # methylation had missing values: KNN-imputed (not dropped), so every probe is kept
    assert cohort.omics["methylation"].isna().to_numpy().any()
    assert selector.report_["methylation"]["after_missing"] == 300
    assert np.isfinite(out["methylation"].to_numpy()).all()


def test_leak_free(cohort, split):
    train, test = split
    changed = {k: v.copy() for k, v in cohort.omics.items()}
    changed["rna"].loc[test[:2]] = changed["rna"].loc[test[:2]] * 7 + 3
    changed["methylation"].loc[test[:2]] = 0.5
    a = QuantileNormalSelector(max_features=100).fit(cohort.omics, cohort.survival.loc[train])
    b = QuantileNormalSelector(max_features=100).fit(changed, cohort.survival.loc[train])
    assert a.selected_features_ == b.selected_features_
    out_a, out_b = a.transform(cohort.omics), b.transform(changed)
    keep = train + test[2:]
    for kind in out_a:
        pd.testing.assert_frame_equal(out_a[kind].loc[keep], out_b[kind].loc[keep])


def test_variance_filter_recovers_planted_genes_better_than_chance(cohort, split):
    """Planted genes carry the survival programme's variance on top of noise: max_features keeps them."""
    train, _ = split
    selector = QuantileNormalSelector(max_features=40).fit({"rna": cohort.omics["rna"]}, cohort.survival.loc[train])
    kept = [f for f in selector.selected_features_["rna"] if not f.startswith("__pad_")]
    hits = len(set(kept) & set(cohort.planted["rna"]))
    chance = 40 * 20 / 400
    assert hits >= max(15, 5 * chance), (hits, chance)


def test_needs_no_events(cohort, split):
    train, _ = split
    survival = cohort.survival.loc[train].assign(event=False)
    out = QuantileNormalSelector().fit_transform({"rna": cohort.omics["rna"].loc[train]}, survival)
    assert out["rna"].shape[0] == len(train)


def test_bad_input(cohort, split):
    train, _ = split
    rna = cohort.omics["rna"].astype(float)
    rna.iloc[0, 0] = -1.0
    with pytest.raises(DataError, match=r"patient 'P0000' has negative values.*log_types"):
        QuantileNormalSelector().fit({"rna": rna}, cohort.survival.loc[train])
    zero = pd.DataFrame([[0.0, 0.0], [1.0, 2.0]], index=["a", "b"], columns=["x", "y"])
    with pytest.raises(DataError, match=r"patient 'a' has no positive values"):
        upper_quartile_normalise("rna", zero)
    methylation = cohort.omics["methylation"].drop(columns="cg00000003")
    selector = QuantileNormalSelector().fit({"methylation": cohort.omics["methylation"]}, cohort.survival.loc[train])
    with pytest.raises(DataError, match=r"1 feature\(s\) the selector was fit with are missing.*cg00000003"):
        selector.transform({"methylation": methylation})
