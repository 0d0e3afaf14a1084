"""Resampled tiles read back exactly: the tiler's own pixels equal what read_tile, the store's
TileDataset and the embedding workers read for the same tile, and old-layout tiles tables are
refused with the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pmx.errors import DataError
from pmx.slides import open_slide
from pmx.slides.writer import write_pyramidal_tiff
from pmx.tiling import (
    GridTiler,
    RegionTiler,
    RepresentativeRegionTiler,
    SlideRef,
    StoreSink,
    decode_pixels,
    plan_box,
    read_tile,
    run_tiling,
)


@pytest.fixture(scope="module")
def odd_slide(synthetic_image, tmp_path_factory) -> Path:
    """0.3 um/px (33x) with levels at 1, 3 and 9: neither 20x nor 10x is a level."""
    path = tmp_path_factory.mktemp("odd") / "odd.svs"
    return write_pyramidal_tiff(path, synthetic_image[0], mpp=0.3, magnification=33,
                                downsamples=(1, 3, 9))


@pytest.fixture(scope="module")
def small_demo_slide(tmp_path_factory) -> Path:
    """A small slide of the demo cohort generator (512 x 384 px at 20x)."""
    from pmx.cohorts.demo.generator import DemoSettings, generate_demo_cohort

    root = tmp_path_factory.mktemp("demo-small")
    generate_demo_cohort(root, DemoSettings(patients=10, slide_size=512, genes=100, mirnas=100,
                                            cpgs=100, workers=1), progress=False)
    return sorted((root / "slides").glob("*.svs"))[0]


CASES = {
    # 20x on a 0.3 um/px slide: 426.7 level-0 px read as 427 px at level 0, resized to 256
    "20x-on-33x": ("odd", lambda: GridTiler(magnification=20, min_tissue=0.3, pixels="png")),
    # 10x: 853.3 level-0 px from the 3x level as 285 px (not 284), resized to 256
    "10x-on-33x": ("odd", lambda: GridTiler(magnification=10, min_tissue=0.3, pixels="png")),
    # 40x on a 20x slide: 64 level-0 px upsampled to 128
    "40x-upsampled": ("demo", lambda: GridTiler(magnification=40, size=128, min_tissue=0.0,
                                                pixels="png")),
    # a region bigger than the slide, shrunk to its 384 px side, resized to 256
    "small-shrunk": ("demo", lambda: RegionTiler(size=1024, out_size=256, small_slide="shrink",
                                                 pixels="png")),
    # ... or padded with white at the same scale: 1024 px at 15x = 1365.3 level-0 px, mostly
    # outside the slide, read as 342 px at the 4x level and resized to 256
    "small-padded": ("demo", lambda: RegionTiler(size=1024, out_size=256, magnification=15,
                                                 pixels="png")),
    # ContraMAE's window at 5x: 4096 level-0 px on a 512 px slide, padded, read at the 4x level
    # without resampling (the one case here that does not resample)
    "small-5x-window": ("demo", lambda: RepresentativeRegionTiler(size=1024, magnification=5,
                                                                  pixels="png")),
    # a slide without a pixel size, tiled with an mpp override of 0.3 (--mpp-csv): readers
    # open the file without the override and must still get the tiler's pixels
    "mpp-override": ("no-mpp", lambda: GridTiler(magnification=20, min_tissue=0.3,
                                                 pixels="png")),
}


def _slide_for(kind: str, odd_slide: Path, small_demo_slide: Path, no_mpp: Path) -> Path:
    return {"odd": odd_slide, "demo": small_demo_slide, "no-mpp": no_mpp}[kind]


@pytest.mark.parametrize("case", sorted(CASES))
def test_readers_reproduce_the_tilers_pixels(case, odd_slide, small_demo_slide, synth_no_mpp,
                                              tmp_path):
    from pmx.embedding.tiles import TileBatches, load_tiles, make_batches, plan_slides
    from pmx.featurestore import open_store
    from pmx.featurestore.datasets import TileDataset

    kind, make = CASES[case]
    path = _slide_for(kind, odd_slide, small_demo_slide, synth_no_mpp.path)
    override = 0.3 if kind == "no-mpp" else None
    tiler = make()
    store = open_store(tmp_path / "store")
    store.upsert("slides", [{"slide_id": "s", "patient_id": "P1", "path": str(path)}])
    summary = run_tiling(tiler, [SlideRef("s", str(path), "P1", override)], StoreSink(store),
                         progress=False)
    assert summary.tiles > 0
    rows = store.read_arrow("tiles").to_pylist()
    assert len(rows) == summary.tiles
    # the cases resample (the point of the test), and the read is the one plan_box gives
    assert all((r["size"] != r["out_size"]) == (case != "small-5x-window") for r in rows), case
    expected = {(r["x"], r["y"]): decode_pixels(r["pixels"]) for r in rows}  # the tiler's PNG
    with open_slide(path) as slide:
        for r in rows:
            box = plan_box(slide, r["x"], r["y"], r["extent"], r["out_size"])
            assert (box.level, box.size) == (r["level"], r["size"])
            assert expected[(r["x"], r["y"])].shape == (r["out_size"], r["out_size"], 3)
            np.testing.assert_array_equal(read_tile(slide, r), expected[(r["x"], r["y"])])
    # the store's TileDataset, reading the slide
    data = TileDataset(store, tiler.fingerprint, source="slide")
    assert len(data) == len(rows)
    for i in range(len(data)):
        item = data[i]
        np.testing.assert_array_equal(item["image"].permute(1, 2, 0).numpy(),
                                      expected[(item["x"], item["y"])])
    # the embedding workers, reading the slide
    tiles, version = load_tiles(store, tiler.fingerprint)
    slides, source = plan_slides(tiles, {"s": (str(path), None)}, "slide")
    batches = TileBatches(slides, make_batches(slides, [0], 64), source, store, version)
    work = slides[0]
    position = 0
    for b in range(len(batches)):
        item = batches[b]
        assert "error" not in item, item.get("error")
        for image in item["tiles"].numpy():
            key = (int(work.x[position]), int(work.y[position]))
            np.testing.assert_array_equal(image, expected[key])
            position += 1
    assert position == len(rows)


def test_size_is_the_exact_read_not_a_rounded_edge(odd_slide):
    """10x on the 0.3 um/px slide: the 3x level holds 284.4 px of a tile; reading 284 (the
    rounded edge) and resizing gives other pixels than the tiler's 285."""
    with open_slide(odd_slide) as slide:
        box = plan_box(slide, 600, 600, 256 * 1.0 / 0.3, 256)
        assert (box.level, box.size, box.out_size) == (1, 285, 256)
        rounded = slide.read_level(600, 600, 1, 284, 284)
        from PIL import Image

        wrong = np.asarray(Image.fromarray(rounded).resize((256, 256), Image.Resampling.BILINEAR))
        assert np.abs(wrong.astype(int) - read_tile(slide, {
            "level": 1, "x": 600, "y": 600, "size": 285, "out_size": 256}).astype(int)).max() > 0


# -- old-layout tiles tables ------------------------------------------------------------------
OLD_TILES = pa.schema([  # the tiles table of store schema version 1
    pa.field("tiler", pa.string(), nullable=False),
    pa.field("slide_id", pa.string(), nullable=False),
    pa.field("patient_id", pa.string()),
    pa.field("level", pa.int32(), nullable=False),
    pa.field("mpp", pa.float64()),
    pa.field("x", pa.int64(), nullable=False),
    pa.field("y", pa.int64(), nullable=False),
    pa.field("size", pa.int32()),
    pa.field("tissue", pa.float32()),
    pa.field("pixels", pa.binary()),
    pa.field("pixel_format", pa.string()),
], metadata={b"pmx.schema_version": b"1"})


def _old_store(uri: Path) -> None:
    import lancedb

    db = lancedb.connect(str(uri))
    db.create_table("tiles", pa.table({
        "tiler": ["old"], "slide_id": ["s"], "patient_id": ["P1"], "level": pa.array([0], pa.int32()),
        "mpp": [0.5], "x": [0], "y": [0], "size": pa.array([256], pa.int32()),
        "tissue": pa.array([1.0], pa.float32()), "pixels": pa.array([None], pa.binary()),
        "pixel_format": pa.array([None], pa.string())}, schema=OLD_TILES))


def test_an_old_layout_tiles_table_is_refused_with_the_fix(tmp_path, odd_slide):
    from pmx.featurestore import open_store
    from pmx.featurestore.datasets import TileDataset

    uri = tmp_path / "store"
    _old_store(uri)
    store = open_store(uri)
    for attempt in (lambda: store.read("tiles"), lambda: TileDataset(store, "old"),
                    lambda: store.count("tiles")):
        with pytest.raises(DataError) as err:
            attempt()
        message = str(err.value)
        assert str(uri) in message and "out_size" in message and "--force" in message
        assert "version 1" in message
    # tiling without --force stops before any slide is tiled, with the same message
    tiler = GridTiler(magnification=10, min_tissue=0.3)
    refs = [SlideRef("s", str(odd_slide), "P1")]
    with pytest.raises(DataError, match="--force"):
        run_tiling(tiler, refs, StoreSink(open_store(uri)), progress=False)
    # --force drops the old table (and the tile stage records of every tiler), then tiles
    fresh = open_store(uri)
    fresh.upsert("artifacts", [{"key": "k-old", "unit": "s", "stage": "tile", "fingerprint": "old",
                                "status": "done", "rows": 1}])
    summary = run_tiling(tiler, refs, StoreSink(fresh), force=True, progress=False)
    after = open_store(uri)
    assert after.count("tiles") == summary.tiles > 0
    assert set(after.read_arrow("tiles", columns=["tiler"]).column("tiler").to_pylist()) == {
        tiler.fingerprint}
    assert after.count("artifacts", "key = 'k-old'") == 0
    assert {"out_size", "extent", "score"} <= set(after.table("tiles").schema.names)
