"""Two `pmx tile` processes on the same slides and store split the slides: each slide is tiled
by exactly one of them (claimed right before it is tiled), and the store holds each tile once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

#: waits until the other process is ready too, then runs the real `pmx` command line
_BARRIER = textwrap.dedent("""
    import sys, time, pathlib
    from pmx.cli.main import cli
    import pmx.tiling.runner, pmx.featurestore  # imported before the start line, like the other one
    mine, other = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    mine.touch()
    deadline = time.monotonic() + 120
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    sys.argv = ["pmx", *sys.argv[3:]]
    cli()
""")


@pytest.fixture(scope="module")
def small_slide(synthetic_image, tmp_path_factory) -> Path:
    """A 1536 x 1024 px corner of the synthetic slide (cheap to tile, still 24 tiles)."""
    from pmx.slides.writer import write_pyramidal_tiff

    path = tmp_path_factory.mktemp("small") / "small.svs"
    return write_pyramidal_tiff(path, synthetic_image[0][:1024, :1536].copy())


def test_two_tile_processes_split_the_slides(small_slide, tmp_path):
    from pmx.featurestore import open_store
    from pmx.tiling import GridTiler, MemorySink, SlideRef, run_tiling

    folder = tmp_path / "slides"
    folder.mkdir()
    names = [f"slide{i}" for i in range(6)]
    for name in names:
        os.symlink(small_slide, folder / f"{name}.svs")
    store = tmp_path / "store"
    settings = ["--set", "min_tissue=0.0"]
    procs = []
    for me, workers in (("a", "2"), ("b", "1")):  # one with a worker pool, one in-process
        other = "b" if me == "a" else "a"
        command = [sys.executable, "-c", _BARRIER, str(tmp_path / me), str(tmp_path / other),
                   "tile", str(folder), "--tiler", "grid", *settings, "--store", str(store),
                   "--workers", workers, "--json"]
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    summaries = {}
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        summaries[proc.pid] = json.loads(out)

    # no slide tiled twice: the two runs' computed slides add up to the slides, once each
    computed = {pid: s["computed"] for pid, s in summaries.items()}
    assert sum(computed.values()) == len(names), summaries
    for s in summaries.values():
        assert s["computed"] + s["skipped"] == len(names) and not s["failed"]
    # each slide's completion record names the process that tiled it
    opened = open_store(store)
    units = opened.read("artifacts", where="stage = 'tile' AND unit != '*'",
                        columns=["unit", "status", "host"])
    assert sorted(units["unit"].to_list()) == names
    assert set(units["status"].to_list()) == {"done"}
    by_pid = Counter(int(host.rsplit(":", 1)[1]) for host in units["host"].to_list())
    assert dict(by_pid) == {pid: n for pid, n in computed.items() if n}
    # (Which run tiles how many is timing: on a busy machine one run may finish all six before
    # the other gets going, and then it correctly skips them all. The sum above is the invariant.)
    # no duplicate rows: the store holds exactly the tiles one run makes
    tiler = GridTiler(min_tissue=0.0)
    fresh = MemorySink()
    run_tiling(tiler, [SlideRef("slide0", str(small_slide))], fresh, progress=False)
    rows = opened.read_arrow("tiles", columns=["slide_id", "level", "x", "y"])
    keys = list(zip(*(rows.column(c).to_pylist() for c in ("slide_id", "level", "x", "y"))))
    assert len(keys) == len(set(keys)) == len(names) * fresh.table().num_rows


@pytest.mark.parametrize("finished", [True, False])
def test_a_slide_held_by_another_run_is_waited_for(synth20, tmp_path, finished):
    """A slide another run holds is skipped at first, waited for once this run holds nothing,
    then skipped if that run finished it, or tiled here if it let go without finishing."""
    import threading
    import time

    from pmx.featurestore import open_store
    from pmx.tiling import GridTiler, SlideRef, SlideTiles, StoreSink, run_tiling
    from pmx.tiling.records import empty_records

    tiler = GridTiler(min_tissue=0.5)
    refs = [SlideRef(f"s{i}", str(synth20.path)) for i in range(3)]
    other = StoreSink(open_store(tmp_path / "store"))  # another handle: its own unit locks
    other.begin(tiler, [r.slide_id for r in refs])
    assert other.claim("s1") == "claimed"

    def finish_later() -> None:
        time.sleep(1.0)
        if finished:  # a slide without tiles, committed and recorded: gives the claim back
            other.write(SlideTiles("s1", empty_records()))
        else:
            other.release("s1")  # e.g. its tiling failed
        other.end()

    thread = threading.Thread(target=finish_later)
    thread.start()
    summary = run_tiling(tiler, refs, StoreSink(open_store(tmp_path / "store")), progress=False)
    thread.join()
    assert summary.computed == (2 if finished else 3)
    assert summary.skipped == (1 if finished else 0)
    store = open_store(tmp_path / "store")
    tiled = set(store.read_arrow("tiles", columns=["slide_id"]).column("slide_id").to_pylist())
    assert tiled == ({"s0", "s2"} if finished else {"s0", "s1", "s2"})
