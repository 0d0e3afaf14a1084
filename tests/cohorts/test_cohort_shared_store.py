"""Several cohorts in one store: each cohort's reads return its own patients, a patient id
owned by another cohort is refused, and re-ingesting a replaced cohort is not a stale cache hit.

The demo generator draws patient barcodes from the seed, so two demo cohorts of the same seed
and different sizes share some patient ids (and differ in everything else about them)."""

from __future__ import annotations

import pandas as pd
import pytest

from pmx.cohorts import DemoSettings, generate_demo_cohort, ingest
from pmx.cohorts.info import store_summary
from pmx.cohorts.manifest import load_manifest
from pmx.errors import DataError
from pmx.featurestore import open_store, read_omics, sql_literal
from pmx.featurestore.datasets import survival_of


def _demo(root, patients: int, seed: int):
    settings = DemoSettings(patients=patients, seed=seed, slide_size=256, genes=100, mirnas=100,
                            cpgs=100, workers=1)
    return generate_demo_cohort(root, settings, progress=False)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Two seeds (disjoint patients) and, for seed 0, two sizes (overlapping patients)."""
    root = tmp_path_factory.mktemp("demos")
    return {"a": _demo(root / "a", 10, 0), "b": _demo(root / "b", 12, 1),
            "a12": _demo(root / "a12", 12, 0)}


def _named(demo, name: str | None):
    manifest = load_manifest(demo.manifest)
    return manifest.model_copy(update={"name": name}) if name else manifest


def _truth(demo) -> pd.DataFrame:
    return pd.read_csv(demo.root / "truth.tsv", sep="\t").set_index("patient_id")


def _patients(store, cohort: str) -> list[str]:
    frame = store.read("patients", where=f"cohort = {sql_literal(cohort)}", columns=["patient_id"])
    return sorted(frame["patient_id"].to_list())


def test_two_cohorts_in_one_store_read_back_apart(demos, tmp_path):
    a, b = demos["a"], demos["b"]
    assert not set(a.patients) & set(b.patients)
    uri = tmp_path / "store"
    ingest(_named(a, "demo-a"), uri)
    ingest(_named(b, "demo-b"), uri)
    store = open_store(uri)
    assert store.count("patients") == 22
    assert _patients(store, "demo-a") == sorted(a.patients)
    assert _patients(store, "demo-b") == sorted(b.patients)
    for demo, name in ((a, "demo-a"), (b, "demo-b")):
        [summary] = store_summary(store, name)
        assert summary["patients"] == len(demo.patients) and summary["slides"] == demo.n_slides
        # survival read back for the cohort's own patients is that cohort's truth
        truth = _truth(demo)
        time, event = survival_of(store, list(truth.index))
        assert list(time) == list(truth["time"].astype(float))
        assert list(event) == list(truth["event"].astype(bool))
    # both cohorts' omics and slides are there, side by side
    assert sorted(read_omics(store, modality="rna").patient_ids) == sorted(a.patients + b.patients)
    assert store.count("slides") == a.n_slides + b.n_slides
    # `pmx select`'s store input, for one cohort
    from pmx.omics.inputs import from_store

    assert from_store(store, ["rna"], cohort="demo-a").patients == sorted(a.patients)
    assert from_store(store, ["rna"], cohort="demo-b").patients == sorted(b.patients)
    with pytest.raises(DataError, match="no patients of cohort 'demo-c'"):
        from_store(store, ["rna"], cohort="demo-c")
    # nothing of demo-a was replaced by ingesting demo-b: its ingest is still a cache hit
    assert ingest(_named(a, "demo-a"), uri).cached


def test_a_patient_of_another_cohort_is_refused(demos, tmp_path):
    a, a12 = demos["a"], demos["a12"]
    shared = sorted(set(a.patients) & set(a12.patients))
    assert shared  # same seed, another size: some barcodes repeat
    uri = tmp_path / "store"
    ingest(_named(a, "demo-a"), uri)
    store = open_store(uri)
    before = (store.count("patients"), store.count("slides"), store.count("omics"))
    with pytest.raises(DataError) as err:
        ingest(_named(a12, "demo-a12"), uri)
    message = str(err.value)
    assert "'demo-a12'" in message and "'demo-a'" in message and shared[0] in message
    assert f"{len(shared)} of its 12 patient(s)" in message
    assert "--store" in message and "--seed" in message and "nothing was written" in message
    assert (store.count("patients"), store.count("slides"), store.count("omics")) == before
    assert _patients(store, "demo-a") == sorted(a.patients)
    assert _patients(store, "demo-a12") == []


def test_reingesting_a_replaced_cohort_is_not_a_stale_cache_hit(demos, tmp_path):
    """Same cohort name, other contents (what `pmx run --demo` with another demo size does):
    each ingest makes the store hold exactly the cohort that was asked for."""
    a, a12 = demos["a"], demos["a12"]
    uri = tmp_path / "store"
    first = ingest(a.manifest, uri)
    second = ingest(a12.manifest, uri)
    assert not first.cached and not second.cached
    store = open_store(uri)
    assert _patients(store, "pmx-demo") == sorted(a12.patients)
    again = ingest(a.manifest, uri)
    assert not again.cached  # a12 replaced its rows: they are written again
    assert _patients(store, "pmx-demo") == sorted(a.patients)
    time, _ = survival_of(store, list(_truth(a).index))
    assert list(time) == list(_truth(a)["time"].astype(float))
    assert store.count("slides") == a.n_slides
    assert ingest(a.manifest, uri).cached  # and now it is current again
