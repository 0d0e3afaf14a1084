"""CLAM/TRIDENT .h5 and .pt feature bags: import, export, round trip and bad files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from pmx.errors import DataError
from pmx.featurestore import open_store
from pmx.featurestore.interop import export_h5, export_pt, import_h5, import_pt

SLIDES = ["TCGA-AB-1234-01Z-00-DX1", "TCGA-AB-1234-01Z-00-DX2", "TCGA-CD-5678-01Z-00-DX1"]


def _clam_h5(path, n, dim=32, seed=0, level=0, leading_axis=False):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, dim)).astype(np.float32)
    coords = rng.permutation(n * 4)[:n, None] * np.array([[256, 512]])  # unordered, unique
    with h5py.File(path, "w") as h5:
        h5.create_dataset("features", data=features[None] if leading_axis else features)
        dataset = h5.create_dataset("coords", data=coords)
        dataset.attrs["patch_level"] = level
        dataset.attrs["patch_size"] = 256
    return features, coords


def test_h5_round_trip_keeps_vectors_coords_and_order(tmp_path):
    src, out = tmp_path / "clam", tmp_path / "out"
    src.mkdir()
    original = {s: _clam_h5(src / f"{s}.h5", 20 + 5 * i, seed=i, leading_axis=i == 2)
                for i, s in enumerate(SLIDES)}
    store = open_store(tmp_path / "store")
    written = import_h5(store, [src], "uni")
    assert written == {s: 20 + 5 * i for i, s in enumerate(SLIDES)}
    assert import_h5(store, [src], "uni") == {}  # same files again: cache hit
    # TCGA barcodes give the patient: two slides of one patient form one bag
    assert store.read_bag("uni", patient_id="TCGA-AB-1234").shape == (45, 32)
    assert store.embedding_info("uni") == (32, "float32")
    paths = export_h5(store, "uni", out)
    assert sorted(p.name for p in paths) == sorted(f"{s}.h5" for s in SLIDES)
    for slide, (features, coords) in original.items():
        with h5py.File(out / f"{slide}.h5", "r") as h5:
            np.testing.assert_array_equal(h5["features"][()], features)
            np.testing.assert_array_equal(h5["coords"][()], coords)
            assert h5["coords"].attrs["patch_level"] == 0
    # and the exported files import into a second store unchanged
    other = open_store(tmp_path / "store2")
    import_h5(other, [out], "uni", dtype="float16")
    assert other.embedding_info("uni") == (32, "float16")
    np.testing.assert_allclose(other.read_bag("uni", slide_id=SLIDES[0]),
                               original[SLIDES[0]][0].astype(np.float16))


def test_pt_round_trip_and_patient_mapping(tmp_path):
    src, out = tmp_path / "pt", tmp_path / "out"
    src.mkdir()
    bags = {f"slide{i}": torch.randn(7 + i, 16) for i in range(3)}
    for name, tensor in bags.items():
        torch.save(tensor, src / f"{name}.pt")
    store = open_store(tmp_path / "store")
    store.upsert("slides", [{"slide_id": "slide0", "patient_id": "from-slides-table"}])
    import_pt(store, sorted(src.iterdir()), "resnet50-trunc", patients=None)
    patients = dict(store.read("embeddings", columns=["slide_id", "patient_id"]).unique().rows())
    assert patients == {"slide0": "from-slides-table", "slide1": "slide1", "slide2": "slide2"}
    import_pt(store, [src], "mapped", patients={f"slide{i}": "PX" for i in range(3)})
    assert store.read_bag("mapped", patient_id="PX").shape == (24, 16)
    export_pt(store, "resnet50-trunc", out, slide_ids=["slide2", "slide1"])
    assert sorted(p.name for p in out.iterdir()) == ["slide1.pt", "slide2.pt"]
    for name in ("slide1", "slide2"):
        assert torch.equal(torch.load(out / f"{name}.pt", weights_only=True), bags[name])


def test_bad_bag_files_fail_clearly_and_store_nothing(tmp_path, testdata):
    store = open_store(tmp_path / "store")
    bad = tmp_path / "bad"
    bad.mkdir()
    with h5py.File(bad / "nofeatures.h5", "w") as h5:
        h5.create_dataset("coords", data=np.zeros((3, 2)))
    with pytest.raises(DataError, match="nofeatures.h5: no 'features' dataset"):
        import_h5(store, [bad / "nofeatures.h5"], "e")
    with h5py.File(bad / "mismatch.h5", "w") as h5:
        h5.create_dataset("features", data=np.zeros((3, 4)))
        h5.create_dataset("coords", data=np.zeros((2, 2)))
    with pytest.raises(DataError, match="mismatch.h5: coords shape"):
        import_h5(store, [bad / "mismatch.h5"], "e")
    (bad / "garbage.h5").write_bytes((testdata / "broken.svs").read_bytes())
    with pytest.raises(DataError, match="garbage.h5: not a readable HDF5"):
        import_h5(store, [bad / "garbage.h5"], "e")
    with pytest.raises(DataError, match="does not exist"):
        import_h5(store, [tmp_path / "missing.h5"], "e")
    with pytest.raises(DataError, match="no .h5 or .pt"):
        import_h5(store, [tmp_path / "store"], "e")
    assert store.encoders() == []
    with pytest.raises(DataError, match="no embeddings for encoder 'e'"):
        export_h5(store, "e", tmp_path / "out")
