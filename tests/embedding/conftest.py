"""Fixtures of the embedding tests: a small tiled store over the real test slides.

Three slide ids over the two real CMU slides (one pyramidal), tiled once per session with the
grid tiler (128 px at 5x: 9 tiles per slide), copied per test. The encoder is a randomly
initialised ResNet-50 trunk fed 32 px inputs: the real network and code path at a CPU cost
small enough for the default suite.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTDATA = REPO_ROOT.parent / "shared" / "testdata"
SLIDE_FILES = {
    "slide-a": "CMU-1-Small-Region.svs",
    "slide-b": "CMU-1-Small-Region-pyramid.svs",
    "slide-c": "CMU-1-Small-Region.svs",
}
TILER = {"size": 128, "magnification": 5.0}
ENCODER = {"random_init": True, "input_size": 32}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP threads spin against other jobs
    and a forward pass gets several times slower (and ranks compare like with like)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_encoder(**overrides):
    from pmx.encoders import ResNet50Trunc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = ResNet50Trunc({**ENCODER, **overrides})
        encoder.module  # noqa: B018 - build inside the filter
    return encoder


@pytest.fixture(scope="session")
def slide_dir(tmp_path_factory) -> Path:
    """A folder of slide files named by slide id (symlinks to the shared test slides)."""
    if not TESTDATA.is_dir():
        pytest.skip(f"shared test data not found at {TESTDATA}")
    folder = tmp_path_factory.mktemp("slides")
    for slide_id, name in SLIDE_FILES.items():
        (folder / f"{slide_id}.svs").symlink_to(TESTDATA / name)
    return folder


@pytest.fixture(scope="session")
def template_store(tmp_path_factory, slide_dir) -> Path:
    """A store holding the grid tiles of the three slides (never written by tests)."""
    from pmx.featurestore import open_store
    from pmx.tiling import GridTiler, StoreSink, run_tiling
    from pmx.tiling.sources import slides_from_paths

    root = tmp_path_factory.mktemp("template") / "store"
    store = open_store(root)
    refs = slides_from_paths([slide_dir])
    run_tiling(GridTiler(TILER), refs, StoreSink(store), workers=1, progress=False)
    return root


@pytest.fixture
def store_dir(tmp_path, template_store) -> Path:
    target = tmp_path / "store"
    shutil.copytree(template_store, target, symlinks=True)
    return target


@pytest.fixture
def store(store_dir):
    from pmx.featurestore import open_store

    return open_store(store_dir)


@pytest.fixture
def slide_paths(slide_dir) -> dict[str, tuple[str, None]]:
    return {sid: (str(slide_dir / f"{sid}.svs"), None) for sid in SLIDE_FILES}


def stored_vectors(store, fingerprint: str) -> dict[tuple[str, int, int], np.ndarray]:
    """(slide, x, y) -> vector of an encoder's table."""
    table = store.read_arrow(f"embeddings__{fingerprint}", columns=["slide_id", "x", "y", "vector"])
    vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
    keys = zip(table.column("slide_id").to_pylist(), table.column("x").to_pylist(),
               table.column("y").to_pylist())
    return {key: vectors[i] for i, key in enumerate(keys)}


def direct_vectors(store, encoder, slide_paths) -> dict[tuple[str, int, int], np.ndarray]:
    """Reference: the tiler's own records (exact extent and output size) read with OpenSlide
    and encoded one tile at a time, without the embedding pipeline."""
    import torch

    from pmx.slides import open_slide
    from pmx.tiling import GridTiler

    tiler = GridTiler(TILER)
    stored = set(store.read_arrow("tiles", columns=["slide_id"]).column("slide_id").to_pylist())
    out = {}
    for sid in sorted(stored):
        with open_slide(slide_paths[sid][0], slide_id=sid) as slide:
            for row in tiler.tile(slide).records.to_pylist():
                pixels = slide.read_box(row["x"], row["y"], row["extent"], row["out_size"])
                tile = torch.from_numpy(np.array(pixels))[None]
                out[(sid, row["x"], row["y"])] = encoder.encode(tile)[0].numpy()
    return out
