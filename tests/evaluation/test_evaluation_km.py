"""The KM figure: axis label with the time unit, number-at-risk table, and the report links.

Checked through matplotlib's objects (labels, texts), not by comparing images.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402

from pmx.evaluation import logrank_p, make_folds, median_split, report_run  # noqa: E402
from pmx.evaluation.km import at_risk, km_figure  # noqa: E402


@pytest.fixture(scope="module")
def survival():
    rng = np.random.default_rng(3)
    n = 80
    risk = rng.normal(size=n)
    event_time = rng.exponential(700 * np.exp(-0.8 * risk)) + 1
    censor = rng.uniform(100, 2500, n)
    return np.minimum(event_time, censor), event_time <= censor, risk


def _axes(fig, label):
    (ax,) = [a for a in fig.axes if a.get_label() == label]
    return ax


@pytest.mark.parametrize(("unit", "expected"), [(None, "time (days)"), ("months", "time (months)"), ("", "time")])
def test_x_axis_names_the_time_unit(survival, unit, expected):
    t, e, risk = survival
    kwargs = {} if unit is None else {"time_unit": unit}
    fig = km_figure(t, e, median_split(risk), **kwargs)
    try:
        assert _axes(fig, "km").get_xlabel() == expected
    finally:
        plt.close(fig)


def test_number_at_risk_table_counts_patients_still_followed(survival):
    t, e, risk = survival
    high = median_split(risk)
    p = logrank_p(t, e, high)
    fig = km_figure(t, e, high, p_value=p)
    try:
        km, table = _axes(fig, "km"), _axes(fig, "at-risk")
        ticks = list(km.get_xticks())
        assert ticks[0] == 0.0 and len(ticks) >= 3
        texts = [(x.get_position(), x.get_text()) for x in table.texts]
        assert any(text == "number at risk" for _, text in texts)
        for name, members in (("low", ~high), ("high", high)):
            (row_y,) = [pos[1] for pos, text in texts if text == name]
            row = {pos[0]: int(text) for pos, text in texts if pos[1] == row_y and text.isdigit()}
            assert sorted(row) == ticks
            expected = [int((t[members] >= x).sum()) for x in ticks]
            assert [row[x] for x in ticks] == expected
            assert row[0.0] == int(members.sum())  # everyone is at risk at time 0
        assert km.get_legend().get_title().get_text() == f"log-rank p = {p:.3g}"
        labels = [text.get_text() for text in km.get_legend().get_texts()]
        assert labels == [f"low risk (n={int((~high).sum())}, events={int(e[~high].sum())})",
                          f"high risk (n={int(high.sum())}, events={int(e[high].sum())})"]
    finally:
        plt.close(fig)


def test_at_risk_counts_ties_as_still_at_risk():
    assert at_risk([5.0, 10.0, 10.0, 20.0], [0, 10, 10.5, 20, 21]).tolist() == [4, 3, 1, 1, 0]


def test_results_md_links_the_km_png(tmp_path, survival):
    t, e, risk = survival
    ids = [f"P{i:03d}" for i in range(len(t))]
    folds = make_folds(ids, e, n_folds=2, seed=0)
    test = folds.filter(pl.col("part") == "test").select("fold", "patient_id")
    rows = [int(p[1:]) for p in test["patient_id"]]
    predictions = test.with_columns(pl.Series("time", t[rows]), pl.Series("event", e[rows]),
                                    pl.Series("risk", risk[rows]))
    results = report_run(tmp_path, method="demo", cohort="synthetic", preset="tiny", config={},
                         predictions=predictions, splits=folds)
    assert results.files["km_plot"] == "km.png" and (tmp_path / "km.png").is_file()
    markdown = (tmp_path / "results.md").read_text()
    assert "![Kaplan-Meier curves of the median-risk split](km.png)" in markdown
