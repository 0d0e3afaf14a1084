"""The embed stage on the real test slides: vectors, cache, sources, export and error paths."""

from __future__ import annotations

import numpy as np
import pytest
from embed_helpers import SLIDE_FILES, direct_vectors, make_encoder, stored_vectors

from pmx.embedding import EmbedConfig, EmbeddingFailed, embed, tilings
from pmx.errors import ConfigError, DataError

FAST = {"num_workers": 0, "batch_size": 4, "threads": 1}


def _assert_same(got: dict, expected: dict, exact: bool = False) -> None:
    assert set(got) == set(expected)
    for key, vector in expected.items():
        if exact:
            np.testing.assert_array_equal(got[key], vector, err_msg=str(key))
        else:
            np.testing.assert_allclose(got[key], vector, rtol=1e-4, atol=1e-5, err_msg=str(key))


def test_vectors_match_direct_encoding_and_rerun_is_cached(store, slide_paths):
    encoder = make_encoder()
    summary = embed(store, encoder, FAST, slide_paths=slide_paths, progress=False)
    assert summary.computed == summary.committed == 3 and summary.cached == 0
    assert summary.tiles == store.count("tiles") == 27
    assert summary.source == "slide" and summary.precision == "fp32"
    stored = stored_vectors(store, encoder.fingerprint)
    assert next(iter(stored.values())).shape == (1024,)
    _assert_same(stored, direct_vectors(store, encoder, slide_paths))

    # lineage: the stage is recorded with the encoder's weights identity and its warning
    artifacts = store.read("artifacts", where="stage = 'embed' AND unit = '*'")
    assert artifacts["status"].to_list() == ["done"]
    assert "random initialisation" in artifacts["params"][0]

    again = embed(store, encoder, FAST, slide_paths=slide_paths, progress=False)
    assert again.cached == 3 and again.computed == 0 and again.tiles == 0
    forced = embed(store, encoder, FAST, slide_paths=slide_paths, progress=False, force=True)
    assert forced.computed == 3
    assert store.count(f"embeddings__{encoder.fingerprint}") == 27  # replaced, not duplicated


def test_batching_does_not_change_vectors(store, slide_paths):
    encoder = make_encoder()
    embed(store, encoder, {**FAST, "batch_size": 9}, slide_paths=slide_paths, progress=False)
    one = stored_vectors(store, encoder.fingerprint)
    embed(store, encoder, {**FAST, "batch_size": 2}, slide_paths=slide_paths, progress=False,
          force=True)
    _assert_same(stored_vectors(store, encoder.fingerprint), one)


def test_stored_png_pixels_give_the_slide_vectors_in_spawned_workers(store, slide_dir, slide_paths):
    from pmx.tiling import GridTiler, StoreSink, run_tiling
    from pmx.tiling.sources import slides_from_paths

    from embed_helpers import TILER

    tiler = GridTiler({**TILER, "pixels": "png"})  # lossless: same pixels as reading the slide
    run_tiling(tiler, slides_from_paths([slide_dir]), StoreSink(store), workers=1, progress=False)
    encoder = make_encoder()
    with pytest.raises(ConfigError, match="several tilings"):
        embed(store, encoder, FAST, progress=False)
    fps = [t["fingerprint"] for t in tilings(store)]
    assert tiler.fingerprint in fps and len(fps) == 2
    summary = embed(store, encoder, {"tiler": tiler.fingerprint, "num_workers": 1,
                                     "batch_size": 4}, progress=False)
    assert summary.source == "pixels" and summary.computed == 3
    from_pixels = stored_vectors(store, encoder.fingerprint)
    reference = direct_vectors(store, encoder, slide_paths)
    _assert_same(from_pixels, {k: v for k, v in reference.items() if k in from_pixels})


def test_clam_h5_export_has_the_stored_vectors(store, slide_paths, tmp_path):
    h5py = pytest.importorskip("h5py")
    from pmx.featurestore import export_h5

    encoder = make_encoder(dtype="float16")
    embed(store, encoder, FAST, slide_paths=slide_paths, progress=False)
    stored = stored_vectors(store, encoder.fingerprint)
    direct = direct_vectors(store, encoder, slide_paths)
    paths = export_h5(store, encoder.fingerprint, tmp_path / "h5")
    assert sorted(p.stem for p in paths) == sorted(SLIDE_FILES)
    for path in paths:
        with h5py.File(path, "r") as h5:
            features, coords = h5["features"][:], h5["coords"][:]
        assert features.dtype == np.float16 and features.shape == (9, 1024)
        for vector, (x, y) in zip(features, coords):
            np.testing.assert_array_equal(vector, stored[(path.stem, int(x), int(y))])
            np.testing.assert_allclose(vector.astype(np.float32), direct[(path.stem, x, y)],
                                       rtol=2e-3, atol=2e-3)


def test_unreadable_slide_fails_alone(store, slide_paths, testdata):
    encoder = make_encoder()
    paths = dict(slide_paths)
    paths["slide-b"] = (str(testdata / "broken.svs"), None)
    with pytest.raises(EmbeddingFailed, match=r"1 of 3 slide\(s\).*slide-b.*broken.svs") as info:
        embed(store, encoder, FAST, slide_paths=paths, progress=False)
    assert info.value.summary.committed == 2
    assert set(store.read("embeddings__" + encoder.fingerprint)["slide_id"]) == {"slide-a", "slide-c"}
    summary = embed(store, encoder, FAST, slide_paths=slide_paths, progress=False)
    assert summary.computed == 1 and summary.cached == 2  # only the fixed slide is redone


def test_missing_inputs_are_clear_errors(store, tmp_path):
    from pmx.featurestore import open_store

    encoder = make_encoder()
    with pytest.raises(DataError, match="no tiles yet"):
        embed(open_store(tmp_path / "empty"), encoder, FAST, progress=False)
    with pytest.raises(DataError, match="no slide file is known.*slide-a"):
        embed(store, encoder, FAST, progress=False)  # tiles without stored pixels or paths
    with pytest.raises(ConfigError, match="no tiling 'nope'"):
        embed(store, encoder, {**FAST, "tiler": "nope"}, progress=False)
    with pytest.raises(ConfigError, match="precision fp16 is not supported on CPU"):
        embed(store, encoder, {**FAST, "precision": "fp16", "device": "cpu"}, progress=False)


def test_tensorrt_without_the_package_is_a_clear_error():
    import importlib.util

    import torch

    from pmx.embedding.runtime import optimise_module

    if importlib.util.find_spec("torch_tensorrt") is not None:
        pytest.skip("torch-tensorrt is installed here")
    with pytest.raises(ConfigError, match=r"needs torch-tensorrt.*pip install 'pmx\[tensorrt\]'"):
        optimise_module(torch.nn.Identity(), device=torch.device("cpu"), precision="fp32",
                        channels_last=False, compile=False, compile_mode="default",
                        tensorrt=True, example=lambda: torch.zeros(1, 3, 8, 8))
    assert EmbedConfig().tensorrt is False
