"""Bad input gives a DataError (a PmxError) that names the omics type, patient or feature and the fix.

Every case fails before PyDESeq2 or the forest run, so these tests are fast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmx.errors import DataError, PmxError
from pmx.omics import NotFittedError, as_survival_frame, check_matrices
from pmx.omics.deseq2_rsf import DESeq2RSFSelector
from pmx.omics.synthetic import make_synthetic_omics

FAST = dict(top_k=5, n_estimators=5, min_candidates=10)


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_omics(n_patients=40, n_genes=30, n_methylation=20, n_planted=3, seed=2)


def _with(cohort, kind, edit):
    omics = {k: v.astype(float) for k, v in cohort.omics.items()}
    edit(omics[kind])
    return omics


def test_negative_counts_name_patient_and_feature(cohort):
    omics = _with(cohort, "rna", lambda m: m.iloc.__setitem__((3, 4), -2))
    with pytest.raises(DataError, match=r"omics 'rna'.*raw read counts.*patient 'P0003'.*-2.*'GENE00004'"):
        DESeq2RSFSelector(**FAST).fit(omics, cohort.survival)


def test_non_integer_counts_are_refused_or_rounded(cohort):
    omics = _with(cohort, "rna", lambda m: m.iloc.__setitem__((1, 2), 3.5))
    with pytest.raises(DataError, match=r"integer read counts.*patient 'P0001'.*3\.5.*TPM/FPKM.*round_counts"):
        DESeq2RSFSelector(**FAST).fit({"rna": omics["rna"]}, cohort.survival)


def test_all_nan_feature_is_refused(cohort):
    def blank(m):
        m["GENE00007"] = np.nan

    omics = _with(cohort, "rna", blank)
    with pytest.raises(DataError, match=r"omics 'rna': 1 feature\(s\) have no value.*GENE00007.*Drop these"):
        DESeq2RSFSelector(**FAST).fit(omics, cohort.survival)


def test_all_nan_methylation_probe_is_refused_not_silently_dropped(cohort):
    def blank(m):
        m.iloc[:, 5] = np.nan

    omics = _with(cohort, "methylation", blank)
    with pytest.raises(DataError, match=r"omics 'methylation'.*cg00000005"):
        DESeq2RSFSelector(**FAST).fit(omics, cohort.survival)


def test_patient_without_values_is_named(cohort):
    def blank(m):
        m.loc["P0009"] = np.nan

    omics = _with(cohort, "methylation", blank)
    with pytest.raises(DataError, match=r"patient\(s\) P0009 have no 'methylation' values"):
        DESeq2RSFSelector(**FAST).fit(omics, cohort.survival)


def test_too_few_events_for_the_design(cohort):
    survival = cohort.survival.copy()
    survival["event"] = False
    survival.iloc[:2, survival.columns.get_loc("event")] = True
    with pytest.raises(DataError, match=r"2 observed death\(s\).*needs at least 3.*fewer folds"):
        DESeq2RSFSelector(**FAST).fit(cohort.omics, survival)


def test_empty_group_for_the_design(cohort):
    survival = cohort.survival.copy()
    # every death after the median: the high-risk group is empty
    median = survival["time"].median()
    survival["event"] = survival["time"] > median
    with pytest.raises(DataError, match=r"high-risk .* group of this training fold has 0 patient"):
        DESeq2RSFSelector(**FAST).fit(cohort.omics, survival)


def test_patient_ids_that_do_not_match(cohort):
    survival = cohort.survival.set_axis([f"X{i}" for i in range(len(cohort.survival))], axis=0)
    with pytest.raises(DataError, match=r"none of the 40 training patients has 'rna' values.*IDs match"):
        DESeq2RSFSelector(**FAST).fit(cohort.omics, survival)


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"time": [1.0, -3.0], "event": [1, 0]}, index=["a", "b"]), r"patient 'b' is -3.0.*> 0"),
        (pd.DataFrame({"time": [1.0, np.nan], "event": [1, 0]}, index=["a", "b"]), r"patient 'b'.*finite"),
        (pd.DataFrame({"time": [1.0, 2.0], "event": [1, 2]}, index=["a", "b"]), r"event of patient 'b' is 2.*0/1"),
        (pd.DataFrame({"time": [1.0, 2.0]}, index=["a", "b"]), r"lacks column\(s\) \['event'\]"),
        (pd.DataFrame({"time": [1.0, 2.0], "event": [1, 0]}, index=["a", "a"]), r"patient 'a' more than once"),
    ],
)
def test_bad_survival_tables(frame, message):
    with pytest.raises(DataError, match=message):
        as_survival_frame(frame)


def test_survival_frame_accepts_sksurv_arrays_and_columns():
    from sksurv.util import Surv

    y = Surv.from_arrays(event=[True, False], time=[5.0, 7.0])
    frame = as_survival_frame(y, ids=["a", "b"])
    assert frame.loc["a", "time"] == 5.0 and bool(frame.loc["a", "event"]) and not bool(frame.loc["b", "event"])
    frame = as_survival_frame(pd.DataFrame({"patient_id": ["x"], "time": [3], "event": [True]}))
    assert list(frame.index) == ["x"]


def test_bad_matrices():
    with pytest.raises(DataError, match=r"feature 'g' more than once"):
        check_matrices({"rna": pd.DataFrame([[1, 2]], columns=["g", "g"], index=["a"])})
    with pytest.raises(DataError, match=r"non-numeric values in feature\(s\) \['g'\]"):
        check_matrices({"rna": pd.DataFrame({"g": ["x"]}, index=["a"])})
    with pytest.raises(DataError, match=r"name 'rna' twice"):
        frame = pd.DataFrame({"g": [1]}, index=["a"])
        check_matrices({"rna": frame, "RNA-seq": frame})


def test_transform_before_fit_and_missing_features(cohort):
    selector = DESeq2RSFSelector(**FAST)
    with pytest.raises(NotFittedError):
        selector.transform(cohort.omics)
    assert issubclass(NotFittedError, PmxError)


def test_config_errors_are_config_errors():
    from pmx.errors import ConfigError

    with pytest.raises(ConfigError, match="top_k"):
        DESeq2RSFSelector(top_k=0)
    with pytest.raises(ConfigError, match="unknown key 'topk'"):
        DESeq2RSFSelector(topk=3)


def test_failed_fit_leaves_the_selector_unfitted(cohort):
    from pmx.omics.quantile_normal import QuantileNormalSelector

    selector = QuantileNormalSelector().fit({"rna": cohort.omics["rna"]}, cohort.survival)
    assert selector.transform({"rna": cohort.omics["rna"]})["rna"].shape[0] == 40
    broken = cohort.omics["rna"].astype(float)
    broken["GENE00001"] = np.nan
    with pytest.raises(DataError):
        selector.fit({"rna": broken}, cohort.survival)
    with pytest.raises(NotFittedError, match="not fitted"):
        selector.transform({"rna": cohort.omics["rna"]})
