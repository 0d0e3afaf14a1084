"""The demo cohort end to end on CPU: generate, ingest, tile, embed (slow: minutes here)."""

from __future__ import annotations

import warnings

import pytest


@pytest.mark.slow
def test_demo_cohort_embeds_on_cpu(tmp_path):
    from pmx.cohorts import generate_demo_cohort, ingest
    from pmx.cohorts.demo.generator import DemoSettings
    from pmx.embedding import embed
    from pmx.encoders import ResNet50Trunc
    from pmx.featurestore import open_store
    from pmx.tiling import GridTiler, StoreSink, run_tiling
    from pmx.tiling.sources import slides_from_store

    demo = generate_demo_cohort(tmp_path / "demo", DemoSettings(
        patients=10, slide_size=1024, genes=100, mirnas=100, cpgs=100, workers=1),
        progress=False)
    store = open_store(tmp_path / "store")
    ingest(demo.manifest, store)
    run_tiling(GridTiler(), slides_from_store(store), StoreSink(store), workers=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = ResNet50Trunc(random_init=True)  # the real 256 px network, random weights
        summary = embed(store, encoder, {"num_workers": 0, "threads": 1}, progress=False)
    assert summary.computed == 10 and summary.tiles == store.count("tiles")
    patients = store.read("patients")["patient_id"].to_list()
    for patient in patients:
        bag = store.read_bag(encoder.fingerprint, patient_id=patient)
        assert bag.shape[1] == 1024 and bag.shape[0] >= 1
