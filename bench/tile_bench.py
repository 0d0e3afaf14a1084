"""Tiling throughput: pmx's grid tiler next to a plain single-process OpenSlide loop.

Both sides produce the same thing: 256 px tiles at 20x, JPEG-encoded (quality 90), at the same
coordinates. pmx's side is the whole job (`run_tiling`: worker processes, tissue detection,
planning, reading, encoding, records); the baseline is the loop a script would write:
``OpenSlide.read_region`` + RGB + resize when needed + JPEG, one slide after the other, over the
coordinates pmx chose (so it gets tissue detection for free). The one-off start of pmx's worker
pool (a forkserver importing pmx, about a second) is measured separately as ``startup_s``. Slides: the synthetic demo cohort
(`pmx.cohorts` generator, cached under --data-dir) and the real test slides
(``../shared/testdata/CMU-1-Small-Region*.svs``).

    python bench/tile_bench.py            # 20 demo slides of 4096 px + the 2 real slides
    python bench/tile_bench.py --quick    # 10 demo slides of 2048 px, about a minute
    python bench/tile_bench.py --json     # last line: one JSON object

JSON keys: tiles_per_s, baseline_tiles_per_s, ratio (pmx / baseline), slides_per_min,
baseline_slides_per_min, tiles, slides, workers, and the same per slide set under "sets".
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import openslide
from PIL import Image

from pmx.tiling import GridTiler, MemorySink, SlideRef, run_tiling

REPO = Path(__file__).resolve().parents[1]
TESTDATA = REPO.parent / "shared" / "testdata"


def demo_slides(data_dir: Path, patients: int, size: int) -> list[SlideRef]:
    from pmx.cohorts.demo.generator import DemoSettings, generate_demo_cohort

    root = data_dir / f"demo-{patients}x{size}"
    if not (root / "manifest.toml").exists():
        print(f"generating {patients} demo slides of {size} px in {root} ...", file=sys.stderr)
        generate_demo_cohort(root, DemoSettings(patients=patients, slide_size=size, genes=100,
                                                mirnas=100, cpgs=100), progress=False)
    files = sorted((root / "slides").glob("*.svs"))[:patients]
    return [SlideRef(p.stem, str(p)) for p in files]


def real_slides() -> list[SlideRef]:
    files = sorted(TESTDATA.glob("CMU-1-Small-Region*.svs"))
    return [SlideRef(p.stem, str(p)) for p in files]


def baseline(records, refs: list[SlideRef], quality: int) -> float:
    """Seconds for a plain loop reading and encoding the same tiles, slide by slide."""
    by_slide: dict[str, list[dict]] = {}
    for row in records.select(["slide_id", "x", "y", "level", "size", "out_size"]).to_pylist():
        by_slide.setdefault(row["slide_id"], []).append(row)
    start = time.perf_counter()
    for ref in refs:
        slide = openslide.OpenSlide(ref.path)
        for row in by_slide.get(ref.slide_id, []):
            image = slide.read_region((row["x"], row["y"]), row["level"],
                                      (row["size"], row["size"])).convert("RGB")
            if row["size"] != row["out_size"]:
                image = image.resize((row["out_size"], row["out_size"]), Image.Resampling.BILINEAR)
            image.save(io.BytesIO(), format="JPEG", quality=quality)
        slide.close()
    return time.perf_counter() - start


def measure(name: str, refs: list[SlideRef], tiler: GridTiler, workers: int, repeats: int) -> dict:
    best_pmx = best_base = float("inf")
    tiles = 0
    for _ in range(repeats):
        sink = MemorySink()
        summary = run_tiling(tiler, refs, sink, workers=workers, progress=False)
        tiles = summary.tiles
        best_pmx = min(best_pmx, summary.seconds)
        best_base = min(best_base, baseline(sink.table(), refs, tiler.config.jpeg_quality))
    result = {
        "slides": len(refs), "tiles": tiles,
        "seconds": round(best_pmx, 3), "baseline_seconds": round(best_base, 3),
        "tiles_per_s": round(tiles / best_pmx, 1),
        "baseline_tiles_per_s": round(tiles / best_base, 1),
        "ratio": round(best_base / best_pmx, 3),
        "slides_per_min": round(60 * len(refs) / best_pmx, 1),
        "baseline_slides_per_min": round(60 * len(refs) / best_base, 1),
    }
    print(f"{name:>6}: {len(refs)} slides, {tiles} tiles | pmx {result['tiles_per_s']} tiles/s "
          f"({result['slides_per_min']} slides/min) | plain loop {result['baseline_tiles_per_s']} "
          f"tiles/s | ratio {result['ratio']}", file=sys.stderr)
    return result


def startup_seconds(tiler: GridTiler, ref: SlideRef, workers: int) -> float:
    """First run of a command: starts the worker pool (forkserver + imports), untimed below."""
    start = time.perf_counter()
    run_tiling(tiler, [ref, SlideRef(ref.slide_id + "-again", ref.path)], MemorySink(),
               workers=workers, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (about a minute)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="tiling processes (default: CPU count)")
    parser.add_argument("--patients", type=int, default=None, help="demo slides to tile")
    parser.add_argument("--slide-size", type=int, default=None, help="demo slide width in px")
    parser.add_argument("--repeats", type=int, default=None, help="runs per side (best kept)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get(
        "PMX_BENCH_DATA", "/tmp/pmx-bench")), help="where demo slides are generated and cached")
    args = parser.parse_args()
    patients = args.patients or (10 if args.quick else 20)
    size = args.slide_size or (2048 if args.quick else 4096)
    repeats = args.repeats or (1 if args.quick else 2)

    tiler = GridTiler(size=256, magnification=20, min_tissue=0.25, pixels="jpeg", jpeg_quality=90)
    sets = {"demo": demo_slides(args.data_dir, patients, size)}
    if TESTDATA.is_dir():
        sets["real"] = real_slides()
    startup = startup_seconds(tiler, sets["demo"][0], args.workers)
    print(f"worker start-up (once per command, excluded below): {startup:.2f} s", file=sys.stderr)
    results = {name: measure(name, refs, tiler, args.workers, repeats)
               for name, refs in sets.items()}
    tiles = sum(r["tiles"] for r in results.values())
    slides = sum(r["slides"] for r in results.values())
    seconds = sum(r["seconds"] for r in results.values())
    base = sum(r["baseline_seconds"] for r in results.values())
    payload = {
        "tiles_per_s": round(tiles / seconds, 1),
        "baseline_tiles_per_s": round(tiles / base, 1),
        "ratio": round(base / seconds, 3),
        "slides_per_min": round(60 * slides / seconds, 1),
        "baseline_slides_per_min": round(60 * slides / base, 1),
        "tiles": tiles, "slides": slides, "workers": args.workers,
        "startup_s": round(startup, 2),
        "demo_slide_size": size, "quick": args.quick, "sets": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}",
    }
    print(f"total: {payload['tiles_per_s']} tiles/s vs {payload['baseline_tiles_per_s']} "
          f"(ratio {payload['ratio']})", file=sys.stderr)
    if args.json:
        print(json.dumps(payload))
    else:
        print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
