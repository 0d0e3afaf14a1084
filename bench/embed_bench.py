"""Embedding throughput: the whole data path next to the encoder alone, on the same device.

End to end is ``pmx.embedding.embed`` on a store of real slide tiles: DataLoader workers open
the slide with OpenSlide, read and decode each tile (JPEG tiles of a real Aperio file, resized
to the target scale), batches go to the device in pinned memory, the encoder runs (bf16
autocast + channels_last on GPU, fp32 on CPU), vectors are staged and committed to the store.
The encoder alone runs the same preprocessing + network on uint8 batches already on the device
(CUDA-synchronised timing). ``ratio`` = end to end / encoder alone: 1.0 means the data path is
completely hidden behind compute.

Tiles: the 256 px, 20x grid (no tissue filter) of a benchmark slide: the pixels of
``../shared/testdata/CMU-1-Small-Region.svs`` mirrored to fill a square (8192 px on GPU: 1,024
tiles per slide, like a small real slide; 2048 px on CPU), written as an Aperio-style pyramidal
TIFF with 240 px JPEG tiles (so tile reads straddle JPEG tiles, as on Aperio scans) and cached
under --data-dir. The slide is repeated over as many slide ids (symlinks) as the tile count
needs: every tile is a real OpenSlide read and JPEG decode; the file itself stays in the page
cache. Weights are random (throughput does not depend on them).

``tiles_per_s`` is the steady state: it leaves out the one-off start (spawning the workers,
first batch, compilation), reported as ``startup_s``; ``with_startup_tiles_per_s`` includes it.
The store write (commit) is included in both.

    python bench/embed_bench.py --quick           # CPU, a minute
    python bench/embed_bench.py --device cuda     # GPU: 100,000 tiles, batch 256, bf16
    python bench/embed_bench.py --json            # last line: one JSON object

JSON keys: tiles_per_s, encoder_only_tiles_per_s, ratio, reader_only_tiles_per_s (the data
path alone: what the workers can feed), with_startup_tiles_per_s, startup_s, commit_s, tiles,
slides, tiles_per_slide, batch_size, workers, device, precision, encoder, input_size, compile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
TESTDATA = REPO.parent / "shared" / "testdata"
SLIDE = TESTDATA / "CMU-1-Small-Region.svs"


def bench_slide(data_dir: Path, side: int) -> Path:
    """A ``side`` x ``side`` px Aperio-style slide (20x, 0.5 um/px, 240 px JPEG tiles, q 85)
    made of the real test slide's pixels, mirrored to fill it; cached in ``data_dir``."""
    import numpy as np

    from pmx.slides import open_slide
    from pmx.slides.writer import write_pyramidal_tiff

    path = data_dir / f"cmu-mirrored-{side}.svs"
    if path.exists():
        return path
    print(f"writing a {side} px benchmark slide to {path} ...", file=sys.stderr)
    with open_slide(SLIDE) as slide:
        source = slide.read_level(0, 0, 0, slide.width, slide.height)
    block = np.concatenate([source, source[:, ::-1]], axis=1)
    block = np.concatenate([block, block[::-1]], axis=0)
    reps = (-(-side // block.shape[0]), -(-side // block.shape[1]), 1)
    image = np.ascontiguousarray(np.tile(block, reps)[:side, :side])
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp.svs")
    write_pyramidal_tiff(partial, image, mpp=0.5, magnification=20, tile=240, quality=85)
    partial.replace(path)
    return path


def build_store(root: Path, slide_file: Path, tiles_wanted: int, warmup_tiles: int,
                tile_size: int, magnification: float,
                pixels: str) -> tuple[object, dict[str, tuple[str, None]], int]:
    """A store whose tiles table holds one slide's grid repeated over enough slide ids, plus a
    small ``warmup`` slide."""
    import pyarrow as pa

    from pmx.featurestore import open_store, schemas
    from pmx.slides import open_slide
    from pmx.tiling import GridTiler, to_store_rows

    tiler = GridTiler(size=tile_size, magnification=magnification, min_tissue=0.0, pixels=pixels)
    with open_slide(slide_file, slide_id="template") as slide:
        records = tiler.tile(slide).records
    per_slide = min(records.num_rows, tiles_wanted)
    n_slides = max(1, -(-tiles_wanted // per_slide))
    slide_dir = root / "slides"
    slide_dir.mkdir(parents=True)
    base = to_store_rows(records, schemas.TILES.schema)
    parts, paths = [], {}
    names = [("warmup", min(warmup_tiles, records.num_rows))]
    names += [(f"bench-{i:05d}", per_slide) for i in range(n_slides)]
    for sid, count in names:
        (slide_dir / f"{sid}.svs").symlink_to(slide_file)
        paths[sid] = (str(slide_dir / f"{sid}.svs"), None)
        part = base.slice(0, count)
        part = part.set_column(part.schema.get_field_index("slide_id"), "slide_id",
                               pa.array([sid] * count, pa.string()))
        parts.append(part)
    store = open_store(root / "store")
    store.upsert("tiles", pa.concat_tables(parts))
    return store, paths, per_slide


def reader_only(store, paths, slide_ids, batch: int, workers: int, pin: bool) -> float:
    """Tiles/s of the data path alone (workers reading and decoding, batches to the main
    process, pinned when on GPU), without the encoder: what the readers can feed."""
    from pmx.embedding.tiles import TileBatches, load_tiles, make_batches, make_loader, plan_slides

    tiles, version = load_tiles(store, store.read_arrow("tiles", columns=["tiler"], limit=1)
                                .column("tiler")[0].as_py(), slide_ids)
    slides, source = plan_slides(tiles, paths, "auto")
    batches = make_batches(slides, range(len(slides)), batch)
    loader = make_loader(TileBatches(slides, batches, source, store, version),
                         num_workers=workers, prefetch_factor=4, pin_memory=pin)
    count, seen, start = 0, 0, time.perf_counter()
    warm = max(1, min(workers, len(batches)))
    for item in loader:
        seen += 1
        if seen <= warm:  # until every worker has started and delivered once
            start = time.perf_counter()
            continue
        count += item["tiles"].shape[0]
    return count / (time.perf_counter() - start) if count else 0.0


def encoder_only(encoder, device: torch.device, precision: str, batch: int, size: int,
                 channels_last: bool, compile: bool, seconds: float) -> float:
    """Tiles/s of preprocess + forward on uint8 batches already on the device."""
    from pmx.embedding.runtime import autocast, optimise_module

    tiles = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, device=device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        example = encoder.preprocess(tiles)
        forward = optimise_module(encoder.module, device=device, precision=precision,
                                  channels_last=channels_last, compile=compile,
                                  compile_mode="max-autotune-no-cudagraphs", tensorrt=False,
                                  example=lambda: example)

        def step() -> None:
            with autocast(device, precision):
                forward(encoder.preprocess(tiles)).float()

        for _ in range(3 if device.type == "cuda" else 1):  # warm-up (autotuning, compile)
            step()
        sync()
        count, start = 0, time.perf_counter()
        while True:
            step()
            count += 1
            if device.type == "cuda" and count % 10:
                continue
            sync()
            if time.perf_counter() - start >= seconds:
                break
        return count * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (about a minute on CPU)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    parser.add_argument("--encoder", default="resnet50-trunc")
    parser.add_argument("--tiles", type=int, default=None, help="tiles end to end")
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--magnification", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=-1, help="-1 = auto")
    parser.add_argument("--precision", default="auto", help="auto, bf16, fp16, fp32")
    parser.add_argument("--source", choices=["slide", "pixels"], default="slide",
                        help="read tiles from the slide, or from stored JPEG pixels")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--encoder-seconds", type=float, default=None)
    parser.add_argument("--slide-side", type=int, default=None,
                        help="benchmark slide side in px (default 8192 on GPU, 2048 on CPU)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get(
        "PMX_BENCH_DATA", Path(tempfile.gettempdir()) / "pmx-bench-data")),
                        help="where the generated benchmark slide is cached")
    args = parser.parse_args()

    from pmx.embedding import EmbedConfig, embed
    from pmx.embedding.runtime import Ranks, resolve_device, resolve_precision
    from pmx.plugins import get_registry

    if not SLIDE.exists():
        sys.exit(f"test slide {SLIDE} not found (see ../shared/testdata/README.md)")
    device = resolve_device(args.device, Ranks())
    cuda = device.type == "cuda"
    precision = resolve_precision(args.precision, device)
    tiles_wanted = args.tiles or (32 if args.quick else (100_000 if cuda else 256))
    batch = args.batch_size or (256 if cuda else (8 if args.quick else 16))
    encoder_seconds = args.encoder_seconds or (5.0 if args.quick else 20.0)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # random-init warning: speed does not depend on weights
    encoder = get_registry().create("encoder", args.encoder, {"random_init": True})
    encoder.module  # noqa: B018 - build once, outside every timing

    root = Path(tempfile.mkdtemp(prefix="pmx-embed-bench-"))
    try:
        pixels = "jpeg" if args.source == "pixels" else "none"
        warmup = batch * (4 if cuda else 1)
        slide_file = bench_slide(args.data_dir, args.slide_side or (8192 if cuda else 2048))
        store, paths, per_slide = build_store(root, slide_file, tiles_wanted, warmup,
                                              args.tile_size, args.magnification, pixels)
        measured = [sid for sid in paths if sid != "warmup"]
        config = EmbedConfig(device=str(device), precision=precision, batch_size=batch,
                             num_workers=args.workers, compile=args.compile,
                             channels_last=not args.no_channels_last, threads=args.threads,
                             source=args.source)
        print(f"warm-up: {warmup} tiles on {device}, {precision} ...", file=sys.stderr)
        embed(store, encoder, config.model_copy(update={"slides": ["warmup"]}),
              slide_paths=paths, progress=False)
        print(f"end to end: {len(measured)} slide(s) x {per_slide} tiles ...", file=sys.stderr)
        summary = embed(store, encoder, config.model_copy(update={"slides": measured}),
                        slide_paths=paths, progress=not args.json)
        print("readers alone ...", file=sys.stderr)
        from pmx.embedding.pipeline import _auto_workers

        workers = args.workers if args.workers >= 0 else _auto_workers(device)
        readers = reader_only(store, paths, measured, batch, workers, pin=cuda)
        print("encoder alone ...", file=sys.stderr)
        size = encoder.input_size or args.tile_size
        alone = encoder_only(encoder, device, precision, batch, size, not args.no_channels_last,
                             args.compile, encoder_seconds)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    steady_seconds = summary.compute_seconds - summary.startup_seconds + summary.commit_seconds
    steady = (summary.tiles - summary.startup_tiles) / steady_seconds
    total = summary.tiles / (summary.compute_seconds + summary.commit_seconds)
    payload = {
        "tiles_per_s": round(steady, 2),
        "encoder_only_tiles_per_s": round(alone, 2),
        "ratio": round(steady / alone, 3),
        "reader_only_tiles_per_s": round(readers, 2),
        "with_startup_tiles_per_s": round(total, 2),
        "startup_s": round(summary.startup_seconds, 2),
        "commit_s": round(summary.commit_seconds, 2),
        "tiles": summary.tiles,
        "slides": summary.computed,
        "tiles_per_slide": per_slide,
        "batch_size": batch,
        "workers": workers,
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if cuda else
                                 f" ({os.cpu_count()} CPUs, {torch.get_num_threads()} threads)"),
        "precision": precision,
        "encoder": args.encoder,
        "input_size": size,
        "compile": args.compile,
        "source": args.source,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(payload))
    else:
        print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
