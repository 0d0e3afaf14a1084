"""pmx.recipes: the cohort / ingest / folds / run-directory pieces every method's run() shares."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

import pmx
from pmx.errors import ConfigError, DataError
from pmx.featurestore import open_store
from pmx.recipes import (
    DemoSection,
    demo_folder,
    demo_reference,
    resolve_manifest,
    shared_folds,
    write_run,
)


def _context(tmp_path, **kw):
    return pmx.RunContext(method="m", preset="tiny", store=str(tmp_path / "store"), out_dir=tmp_path / "runs", **kw)


def _cohort(n=40, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    time = rng.uniform(10, 1000, n)
    event = rng.random(n) < 0.6
    return ids, time, event


def test_folds_are_computed_once_and_reused_from_the_store(tmp_path, caplog):
    store = open_store(str(tmp_path / "store"))
    ids, time, event = _cohort()
    first_lineage: dict = {}
    with caplog.at_level(logging.INFO, logger="pmx.run"):
        first = shared_folds(store, "c", ids, time, event, folds=5, val_fraction=0.15, seed=3,
                             lineage=first_lineage)
        second_lineage: dict = {}
        second = shared_folds(store, "c", ids, time, event, folds=5, val_fraction=0.15, seed=3,
                              lineage=second_lineage)
    assert first_lineage["stages"]["folds"]["cached"] is False
    assert second_lineage["stages"]["folds"]["cached"] is True
    assert first.sort(["fold", "patient_id"]).equals(second.sort(["fold", "patient_id"]))
    assert "cache hit" in caplog.text
    # stored once: a reuse never duplicates rows
    assert store.count("splits") == first.height == 5 * len(ids)
    # every patient is in exactly one test fold
    tests = first.filter(first["part"] == "test")
    assert sorted(tests["patient_id"].to_list()) == sorted(ids)


def test_other_settings_make_another_split(tmp_path):
    store = open_store(str(tmp_path / "store"))
    ids, time, event = _cohort()
    a = shared_folds(store, "c", ids, time, event, folds=5, val_fraction=0.15, seed=0)
    b = shared_folds(store, "c", ids, time, event, folds=3, val_fraction=0.15, seed=0)
    assert a["split"][0] != b["split"][0]
    assert store.count("splits") == a.height + b.height


def test_resolve_manifest_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="--cohort DIR"):
        resolve_manifest(_context(tmp_path), DemoSection(), method="m")
    with pytest.raises(ConfigError, match="not both"):
        resolve_manifest(_context(tmp_path, demo=True, cohort=tmp_path), DemoSection(), method="m")
    with pytest.raises(DataError, match="no manifest.toml"):
        resolve_manifest(_context(tmp_path, cohort=tmp_path), DemoSection(), method="m")


def test_demo_folder_depends_on_every_setting(tmp_path):
    base = demo_folder(tmp_path, DemoSection(), 0)
    assert base == demo_folder(tmp_path, DemoSection(), 0)
    for change in ({"patients": 20}, {"slide_size": 2048}, {"genes": 200}, {"mirnas": 200}, {"cpgs": 200}):
        assert demo_folder(tmp_path, DemoSection(**change), 0) != base
    assert demo_folder(tmp_path, DemoSection(), 1) != base


def test_demo_reference_reads_truth_json(tmp_path):
    (tmp_path / "manifest.toml").write_text("")
    assert demo_reference(tmp_path / "manifest.toml") == {}
    (tmp_path / "truth.json").write_text(json.dumps({"c_index": {"oracle": 0.81, "slide": 0.6}}))
    assert demo_reference(tmp_path / "manifest.toml") == {"oracle_c_index": 0.81, "slide_c_index": 0.6}


def test_write_run_writes_every_output_with_the_reference(tmp_path):
    ids, time, event = _cohort(60)
    store = open_store(str(tmp_path / "store"))
    split = shared_folds(store, "c", ids, time, event, folds=3, val_fraction=0.2, seed=0)
    tests = split.filter(split["part"] == "test").to_pandas()
    position = {p: i for i, p in enumerate(ids)}
    rows = [position[p] for p in tests["patient_id"]]
    predictions = pd.DataFrame({"fold": tests["fold"], "patient_id": tests["patient_id"], "time": time[rows],
                                "event": event[rows].astype(int), "risk": -time[rows], "part": "test"})
    results = write_run(_context(tmp_path), method="m", cohort="c", config={"a": 1}, predictions=predictions,
                        split=split, fold_metrics={}, lineage={"stages": {}},
                        reference={"oracle_c_index": 0.8})
    run_dir = tmp_path / "runs" / results.run_id
    for name in ("results.json", "results.md", "km.png", "predictions.csv", "lineage.json"):
        assert (run_dir / name).is_file(), name
    # risk = -time orders every comparable pair correctly
    assert results.c_index_mean == pytest.approx(1.0)
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["reference"] == {"oracle_c_index": 0.8}
    assert "oracle 0.800" in (run_dir / "results.md").read_text()


def test_folds_cover_the_whole_cohort_and_agree_across_patient_subsets(tmp_path):
    """Two methods that can use different patients of one cohort see each patient in the same
    test fold (folds are made over the cohort, then restricted)."""
    from pmx.cohorts import DemoSettings, generate_demo_cohort, ingest

    demo = generate_demo_cohort(tmp_path / "cohort", DemoSettings(patients=30, slide_size=512, workers=1,
                                                                  genes=100, mirnas=100, cpgs=100),
                                progress=False)
    store = open_store(str(tmp_path / "store"))
    name = ingest(demo.manifest, store).cohort.name
    everyone = store.read("patients", where=f"cohort = '{name}'", columns=["patient_id", "time", "event"])
    ids = everyone["patient_id"].to_list()
    time, event = everyone["time"].to_numpy(), everyone["event"].to_numpy().astype(bool)
    a_ids, b_ids = ids[:24], ids[6:]
    a = shared_folds(store, name, a_ids, time[:24], event[:24], folds=3, val_fraction=0.2, seed=0)
    lineage: dict = {}
    b = shared_folds(store, name, b_ids, time[6:], event[6:], folds=3, val_fraction=0.2, seed=0, lineage=lineage)
    assert lineage["stages"]["folds"]["cached"] is True
    assert lineage["stages"]["folds"]["cohort_patients"] == 30
    assert set(a["patient_id"].to_list()) == set(a_ids) and set(b["patient_id"].to_list()) == set(b_ids)
    test_a = {r["patient_id"]: r["fold"] for r in a.filter(a["part"] == "test").iter_rows(named=True)}
    test_b = {r["patient_id"]: r["fold"] for r in b.filter(b["part"] == "test").iter_rows(named=True)}
    common = set(test_a) & set(test_b)
    assert len(common) == 18 and all(test_a[p] == test_b[p] for p in common)
