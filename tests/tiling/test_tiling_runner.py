"""Running tilers over many slides: every tiler on the real and demo slides, parallel workers,
resume (Parquet and the feature store, including after a SIGKILL), and per-slide failures."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pmx.errors import SlidesFailed
from pmx.slides import open_slide
from pmx.tiling import (
    GridTiler,
    HsvScoredTiler,
    MemorySink,
    ParquetSink,
    RegionTiler,
    RepresentativeRegionTiler,
    SlideRef,
    StoreSink,
    TilingFailed,
    decode_pixels,
    load_tiles,
    read_tile,
    run_tiling,
    tile_store_slides,
)
from pmx.tiling.sources import slides_from_cohort, slides_from_paths

FAST_TILERS = {
    "grid": lambda: GridTiler(pixels="jpeg"),
    "representative-region": lambda: RepresentativeRegionTiler(),
    "region": lambda: RegionTiler(),
    "hsv-scored": lambda: HsvScoredTiler(candidates=40, top_k=4),
}


def _refs(*paths: Path) -> list[SlideRef]:
    return [SlideRef(p.stem, str(p)) for p in paths]


def _keys(table: pa.Table) -> set[tuple]:
    return set(zip(*(table.column(c).to_pylist() for c in ("slide_id", "x", "y"))))


@pytest.mark.parametrize("name", sorted(FAST_TILERS))
def test_every_tiler_runs_on_the_real_test_slides(name, cmu, cmu_pyramid):
    tiler = FAST_TILERS[name]()
    sink = MemorySink()
    summary = run_tiling(tiler, _refs(cmu, cmu_pyramid), sink, progress=False)
    assert summary.computed == 2 and summary.tiles > 0 and not summary.failed
    table = sink.table()
    assert set(table.column("slide_id").to_pylist()) == {cmu.stem, cmu_pyramid.stem}
    assert set(table.column("tiler").to_pylist()) == {tiler.fingerprint}
    assert set(table.column("tiler_name").to_pylist()) == {name}
    first = table.slice(0, 1).to_pylist()[0]
    image = decode_pixels(first["pixels"])
    assert image.shape == (first["out_size"], first["out_size"], 3)


@pytest.fixture(scope="module")
def demo_cohort(tmp_path_factory) -> Path:
    from pmx.cohorts.demo.generator import DemoSettings, generate_demo_cohort

    root = tmp_path_factory.mktemp("demo")
    settings = DemoSettings(patients=10, slide_size=1024, genes=100, mirnas=100, cpgs=100,
                            workers=1)
    return generate_demo_cohort(root, settings, progress=False).manifest


def test_every_tiler_runs_on_the_demo_cohort(demo_cohort):
    refs = slides_from_cohort(demo_cohort)
    assert len(refs) >= 10
    assert all(r.patient_id and r.slide_id.startswith(r.patient_id) for r in refs)
    for name, make in FAST_TILERS.items():
        tiler = make()
        sink = MemorySink()
        summary = run_tiling(tiler, refs[:4], sink, progress=False)
        assert summary.computed == 4 and not summary.failed, name
        per_slide = sink.table().group_by("slide_id").aggregate([("x", "count")])
        assert per_slide.num_rows == 4, name  # every demo slide gets tiles
        assert set(sink.table().column("patient_id").to_pylist()) == {r.patient_id for r in refs[:4]}


def test_parallel_workers_match_a_single_process(synth20, cmu_pyramid):
    refs = _refs(synth20.path, cmu_pyramid)
    tiler = GridTiler(min_tissue=0.3, pixels="png")
    serial, parallel = MemorySink(), MemorySink()
    run_tiling(tiler, refs, serial, workers=1, progress=False)
    summary = run_tiling(tiler, refs, parallel, workers=2, progress=False)
    assert summary.computed == 2
    a = serial.table().sort_by([("slide_id", "ascending"), ("tile_index", "ascending")])
    b = parallel.table().sort_by([("slide_id", "ascending"), ("tile_index", "ascending")])
    assert a.equals(b)


def test_parquet_sink_resumes_per_slide(synth20, synth40, cmu_pyramid, tmp_path):
    tiler = GridTiler(min_tissue=0.3)
    sink = ParquetSink(tmp_path / "tiles")
    first = run_tiling(tiler, _refs(synth20.path, synth40.path), sink, progress=False)
    assert (first.computed, first.skipped) == (2, 0)
    second = run_tiling(tiler, _refs(synth20.path, synth40.path, cmu_pyramid), sink,
                        progress=False)
    assert (second.computed, second.skipped) == (1, 2)
    table = sink.read()
    assert set(table.column("slide_id").to_pylist()) == {"synth20", "synth40", cmu_pyramid.stem}
    assert table.num_rows == first.tiles + second.tiles
    forced = run_tiling(tiler, _refs(synth20.path), sink, force=True, progress=False)
    assert forced.computed == 1 and sink.read().num_rows == table.num_rows
    other = run_tiling(GridTiler(min_tissue=0.6), _refs(synth20.path), sink, progress=False)
    assert other.computed == 1  # another config is another fingerprint: its own folder


def test_a_broken_slide_fails_alone(broken, synth20, tmp_path):
    sink = ParquetSink(tmp_path / "tiles")
    refs = _refs(synth20.path, broken)
    with pytest.raises(TilingFailed) as err:
        run_tiling(GridTiler(), refs, sink, progress=False)
    message = str(err.value)
    assert "1 of 2 slide(s)" in message and "broken.svs" in message and "rerun" in message
    assert err.value.summary.computed == 1 and set(err.value.summary.failed) == {"broken"}
    assert "could not be tiled" in message and "The other 1 are stored" in message
    assert isinstance(err.value, SlidesFailed)  # one class for any partial slide run
    copy = pickle.loads(pickle.dumps(err.value))  # crosses process boundaries with its summary
    assert type(copy) is TilingFailed and str(copy) == message and copy.summary.failed == {
        "broken": err.value.summary.failed["broken"]}
    assert set(sink.read().column("slide_id").to_pylist()) == {"synth20"}
    again = run_tiling(GridTiler(), refs[:1], sink, progress=False)
    assert again.skipped == 1 and again.computed == 0


def test_slides_from_paths_and_folders(synth20, cmu_pyramid, copy_slides, tmp_path):
    copied = copy_slides(synth20.path, cmu_pyramid,
                         names=("TCGA-AB-1234-01Z-00-DX1.svs", "plain.svs"))
    (copied[0].parent / "notes.txt").write_text("not a slide")
    refs = slides_from_paths([copied[0].parent])
    assert [r.slide_id for r in refs] == ["TCGA-AB-1234-01Z-00-DX1", "plain"]
    assert refs[0].patient_id == "TCGA-AB-1234" and refs[1].patient_id is None
    overrides = {"plain": 0.25}
    assert slides_from_paths([copied[1]], overrides)[0].mpp == 0.25


# -- the feature store ------------------------------------------------------------------------
def test_store_sink_writes_tiles_and_skips_done_slides(synth20, cmu_pyramid, tmp_path):
    from pmx.featurestore import open_store

    store = open_store(tmp_path / "store")
    tiler = GridTiler(min_tissue=0.3, pixels="jpeg")
    refs = [SlideRef("synth20", str(synth20.path), "P1"), SlideRef("cmu", str(cmu_pyramid), "P2")]
    summary = run_tiling(tiler, refs, StoreSink(store), progress=False)
    rows = store.read_arrow("tiles")
    assert rows.num_rows == summary.tiles
    assert set(rows.column("tiler").to_pylist()) == {tiler.fingerprint}
    assert set(rows.column("patient_id").to_pylist()) == {"P1", "P2"}
    one = store.read("tiles", where="slide_id = 'synth20'")
    assert one.height == sum(1 for s in rows.column("slide_id").to_pylist() if s == "synth20")
    stored = decode_pixels(one["pixels"][0]).astype(float)
    assert stored.shape == (256, 256, 3)
    with open_slide(synth20.path) as slide:  # store rows carry enough to re-read the tile
        again_read = read_tile(slide, one.row(0, named=True)).astype(float)
    assert np.abs(again_read - stored).mean() < 4  # JPEG q90
    again = run_tiling(tiler, refs, StoreSink(store), progress=False)
    assert (again.computed, again.skipped) == (0, 2)
    assert store.count("tiles") == summary.tiles
    forced = tile_store_slides(tiler, store, slides=refs[:1], force=True, progress=False)
    assert forced.computed == 1 and store.count("tiles") == summary.tiles  # replaced, not added
    p1 = load_tiles(store, tiler, patient_id="P1")
    assert p1.height == one.height and p1["y"].is_sorted()


def test_store_keeps_region_subpatches_apart_from_their_region(synth20, tmp_path):
    from pmx.featurestore import open_store

    store = open_store(tmp_path / "store")
    tiler = RegionTiler(size=1024, subpatch_size=64, subpatches=True, max_regions=2,
                        rank_by="tissue", pixels="none")
    summary = run_tiling(tiler, [SlideRef("s", str(synth20.path))], StoreSink(store),
                         progress=False)
    assert summary.tiles == 2 + 2 * 256
    regions = load_tiles(store, tiler)
    subs = load_tiles(store, tiler, subpatches=True, slide_id="s")
    assert (regions.height, subs.height) == (2, 512)
    assert set(zip(regions["x"], regions["y"])) <= set(zip(subs["x"], subs["y"]))


def test_killed_run_resumes_with_the_missing_slides(synth20, synth40, cmu_pyramid, tmp_path):
    uri = tmp_path / "store"
    paths = [synth20.path, synth40.path, cmu_pyramid]
    script = textwrap.dedent(f"""
        import os, signal
        from pmx.featurestore import open_store
        from pmx.tiling import GridTiler, SlideRef, StoreSink, run_tiling
        refs = [SlideRef(p.split('/')[-1].split('.')[0], p) for p in {[str(p) for p in paths]!r}]
        def die(result):
            os.kill(os.getpid(), signal.SIGKILL)  # right after the first slide is committed
        run_tiling(GridTiler(min_tissue=0.3), refs, StoreSink(open_store({str(uri)!r})),
                   progress=False, on_result=die)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    from pmx.featurestore import open_store

    store = open_store(uri)
    assert store.count("tiles") > 0
    refs = [SlideRef(p.name.split(".")[0], str(p)) for p in paths]
    resumed = run_tiling(GridTiler(min_tissue=0.3), refs, StoreSink(store), progress=False)
    assert (resumed.computed, resumed.skipped) == (2, 1)
    fresh = MemorySink()
    run_tiling(GridTiler(min_tissue=0.3), refs, fresh, progress=False)
    assert _keys(store.read_arrow("tiles")) == _keys(fresh.table())
    assert store.count("tiles") == fresh.table().num_rows


def test_an_unguarded_script_gets_told_about_the_main_guard(tmp_path, cmu_pyramid, synth20):
    """Spawned workers re-import the user's script; without a __main__ guard each dies at
    start, and the failure must say so instead of only 'worker died'."""
    script = tmp_path / "tile_my_slides.py"
    script.write_text(textwrap.dedent(f"""
        from pmx.tiling import GridTiler, MemorySink, SlideRef, run_tiling
        refs = [SlideRef("a", {str(cmu_pyramid)!r}), SlideRef("b", {str(synth20.path)!r})]
        run_tiling(GridTiler(min_tissue=0.3), refs, MemorySink(), workers=2, progress=False)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode != 0
    assert 'put the call under `if __name__ == "__main__":`' in proc.stderr, proc.stderr[-2000:]
    assert str(script) in proc.stderr
