"""Shared data and helpers of the embedding tests (a uniquely named module, so tests import it
without clashing with other folders' conftest.py).

The test data: a small tiled store over the real test slides.

Three slide ids over the two real CMU slides (one pyramidal), tiled once per session with the
grid tiler (128 px at 5x: 9 tiles per slide), copied per test. The encoder is a randomly
initialised ResNet-50 trunk fed 32 px inputs: the real network and code path at a CPU cost
small enough for the default suite.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTDATA = REPO_ROOT.parent / "shared" / "testdata"
SLIDE_FILES = {
    "slide-a": "CMU-1-Small-Region.svs",
    "slide-b": "CMU-1-Small-Region-pyramid.svs",
    "slide-c": "CMU-1-Small-Region.svs",
}
TILER = {"size": 128, "magnification": 5.0}
ENCODER = {"random_init": True, "input_size": 32}


def make_encoder(**overrides):
    from pmx.encoders import ResNet50Trunc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = ResNet50Trunc({**ENCODER, **overrides})
        encoder.module  # noqa: B018 - build inside the filter
    return encoder


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
