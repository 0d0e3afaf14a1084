"""Fixtures of the embedding tests (data and helpers live in embed_helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from embed_helpers import SLIDE_FILES, TESTDATA, TILER


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP threads spin against other jobs
    and a forward pass gets several times slower (and ranks compare like with like)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
