"""The data path: which tiles to embed, and batches of their pixels from DataLoader workers.

Tiles are planned from the store's ``tiles`` table, sorted per slide in reading order (level,
y, x: neighbouring tiles share the slide's compressed blocks, so OpenSlide's cache hits) and cut
into batches that never cross a slide. Each worker process (``spawn``: Lance and OpenSlide are
not fork-safe) opens the slides it needs itself and returns one ``uint8`` batch per item; all
float work (resize, normalisation) happens on the encoder's device. A slide that cannot be read
comes back as an error item, so one bad slide fails alone instead of stopping the run.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset

from ..errors import DataError, PmxError
from ..tiling.boxes import TileBox, read_box

log = logging.getLogger("pmx.embedding")

#: columns of the store's tiles table the plan needs (pixels are fetched by row id later)
_TILE_COLUMNS = ("slide_id", "patient_id", "level", "x", "y", "size", "out_size", "pixel_format")
#: slides a worker keeps open at once
_OPEN_SLIDES = 4


@dataclass
class SlideWork:
    """One slide's tiles to embed, as column arrays in reading order."""

    slide_id: str
    patient_id: str | None
    path: str | None
    mpp_override: float | None
    level: np.ndarray
    x: np.ndarray
    y: np.ndarray
    size: np.ndarray  # read edge at `level` (the tiler's exact read, see pmx.tiling.boxes)
    out_size: np.ndarray  # edge after resampling (= size where the row has none)
    row_id: np.ndarray  # Lance row ids (stored-pixel reads)
    pixel_format: list[str | None] = field(default_factory=list)
    has_pixels: bool = False

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class BatchSpec:
    """Rows ``start:stop`` of slide number ``slide`` (an index into the plan's slide list)."""

    slide: int
    start: int
    stop: int

    @property
    def n(self) -> int:
        return self.stop - self.start


def load_tiles(store: Any, tiler: str, slide_ids: Sequence[str] | None = None) -> tuple[pa.Table, int]:
    """Tile rows of one tiling (and the tiles table version they were read at)."""
    from pmx.featurestore import sql_in, sql_literal

    if not store.has_table("tiles"):
        raise DataError(f"store {store.uri} has no tiles yet; run `pmx tile --tiler NAME "
                        f"--store {store.uri}` first")
    version = store.versions(["tiles"])["tiles"]
    where = f"tiler = {sql_literal(tiler)}"
    if slide_ids:
        where += f" AND {sql_in('slide_id', slide_ids)}"
    columns = {c: c for c in _TILE_COLUMNS}
    columns["has_pixels"] = "pixels IS NOT NULL"
    handle = store.table_at("tiles", version)
    table = handle.search().where(where).select(columns).with_row_id(True).limit(None).to_arrow()
    table = table.sort_by([("slide_id", "ascending"), ("level", "ascending"),
                           ("y", "ascending"), ("x", "ascending")])
    return table, version


def plan_slides(tiles: pa.Table, paths: dict[str, tuple[str, float | None]],
                source: str) -> tuple[list[SlideWork], str]:
    """Group tile rows by slide; decide the pixel source; check every slide can be read.

    ``paths`` maps slide id -> (file, mpp override). Returns (slides, resolved source).
    """
    if tiles.num_rows == 0:
        return [], source
    has_pixels = tiles.column("has_pixels").to_numpy(zero_copy_only=False)
    if source == "auto":
        source = "pixels" if bool(has_pixels.all()) else "slide"
    slide_col = tiles.column("slide_id").to_numpy(zero_copy_only=False)
    # rows are sorted by slide: split at the boundaries
    starts = np.flatnonzero(np.r_[True, slide_col[1:] != slide_col[:-1]])
    stops = np.r_[starts[1:], len(slide_col)]
    cols = {name: tiles.column(name) for name in tiles.column_names}
    level = cols["level"].to_numpy(zero_copy_only=False).astype(np.int32)
    x = cols["x"].to_numpy(zero_copy_only=False).astype(np.int64)
    y = cols["y"].to_numpy(zero_copy_only=False).astype(np.int64)
    size = np.nan_to_num(cols["size"].to_numpy(zero_copy_only=False).astype(np.float64)).astype(np.int64)
    out_size = cols["out_size"].to_numpy(zero_copy_only=False).astype(np.float64)
    out_size = np.where(np.isnan(out_size), size, out_size).astype(np.int64)  # null: no resampling
    row_id = cols["_rowid"].to_numpy(zero_copy_only=False).astype(np.uint64)
    formats = cols["pixel_format"].to_pylist()
    patients = cols["patient_id"].to_pylist()
    slides: list[SlideWork] = []
    missing_paths: list[str] = []
    missing_pixels: list[str] = []
    for a, b in zip(starts, stops):
        slide_id = str(slide_col[a])
        path, override = paths.get(slide_id, (None, None))
        if source == "slide" and not path:
            missing_paths.append(slide_id)
        if source == "pixels" and not bool(has_pixels[a:b].all()):
            missing_pixels.append(slide_id)
        slides.append(SlideWork(
            slide_id=slide_id, patient_id=patients[a], path=path, mpp_override=override,
            level=level[a:b], x=x[a:b], y=y[a:b], size=size[a:b], out_size=out_size[a:b],
            row_id=row_id[a:b], pixel_format=formats[a:b], has_pixels=bool(has_pixels[a:b].all()),
        ))
    if missing_paths:
        shown = ", ".join(missing_paths[:5]) + (" ..." if len(missing_paths) > 5 else "")
        raise DataError(
            f"{len(missing_paths)} slide(s) have tiles but no slide file is known for them "
            f"({shown}). Fix: pass the slide files or folders to `pmx embed` (as for `pmx tile`), "
            "ingest the cohort (`pmx ingest`) so the store's slides table has their paths, or "
            "tile with --set pixels=jpeg and embed from stored pixels.")
    if missing_pixels:
        shown = ", ".join(missing_pixels[:5]) + (" ..." if len(missing_pixels) > 5 else "")
        raise DataError(f"source=pixels but the tiler stored no pixels for slide(s) {shown}; "
                        "use --set source=slide (read the slides) or retile with --set pixels=jpeg")
    return slides, source


def make_batches(slides: Sequence[SlideWork], order: Sequence[int], batch_size: int) -> list[BatchSpec]:
    """Batches of at most ``batch_size`` tiles, slide by slide in ``order``, never mixing slides
    (so a slide's vectors do not depend on which other slides share its process)."""
    specs = []
    for index in order:
        n = slides[index].n
        specs += [BatchSpec(index, s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    return specs


def shard_slides(slides: Sequence[SlideWork], todo: Sequence[int], world: int) -> list[list[int]]:
    """Split slides across ranks by tile count (largest first onto the least loaded rank), so
    ranks finish together. Deterministic: every rank computes the same split."""
    loads = [0] * world
    shards: list[list[int]] = [[] for _ in range(world)]
    for index in sorted(todo, key=lambda i: (-slides[i].n, slides[i].slide_id)):
        rank = min(range(world), key=lambda r: (loads[r], r))
        shards[rank].append(index)
        loads[rank] += slides[index].n
    return [sorted(shard, key=lambda i: slides[i].slide_id) for shard in shards]


class TileBatches(Dataset):
    """Item ``i`` = batch ``i`` as ``{"index", "tiles": uint8 (n, h, w, 3)}`` or ``{"index",
    "error"}``. Pickles without open handles (they are opened in each worker)."""

    def __init__(self, slides: Sequence[SlideWork], batches: Sequence[BatchSpec], source: str,
                 store: Any = None, tiles_version: int | None = None):
        if source not in ("slide", "pixels"):
            raise ValueError(f"source must be slide or pixels, got {source!r}")
        self.slides = list(slides)
        self.batches = list(batches)
        self.source = source
        self.store = store
        self.tiles_version = tiles_version
        self._open: OrderedDict[int, Any] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_open"] = OrderedDict()
        return state

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        spec = self.batches[index]
        try:
            images = (self._from_slide(spec) if self.source == "slide"
                      else self._from_pixels(spec))
        except PmxError as exc:
            self._close(spec.slide)
            return {"index": index, "error": str(exc)}
        return {"index": index, "tiles": torch.from_numpy(_stack(images))}

    # -- slide reads ---------------------------------------------------------------------------
    def _slide(self, position: int) -> Any:
        from ..slides.reader import open_slide

        slide = self._open.get(position)
        if slide is not None:
            self._open.move_to_end(position)
            return slide
        work = self.slides[position]
        slide = open_slide(work.path, mpp=work.mpp_override, slide_id=work.slide_id)
        self._open[position] = slide
        while len(self._open) > _OPEN_SLIDES:
            _, old = self._open.popitem(last=False)
            old.close()
        return slide

    def _close(self, position: int) -> None:
        slide = self._open.pop(position, None)
        if slide is not None:
            slide.close()

    def _from_slide(self, spec: BatchSpec) -> list[np.ndarray]:
        work = self.slides[spec.slide]
        slide = self._slide(spec.slide)
        out = []
        for i in range(spec.start, spec.stop):
            box = TileBox(int(work.level[i]), int(work.x[i]), int(work.y[i]), int(work.size[i]),
                          int(work.out_size[i]))
            out.append(read_box(slide, box))
        return out

    # -- stored pixels -------------------------------------------------------------------------
    def _from_pixels(self, spec: BatchSpec) -> list[np.ndarray]:
        from pmx.featurestore.datasets import decode_pixels

        work = self.slides[spec.slide]
        ids = work.row_id[spec.start:spec.stop]
        handle = self.store.table_at("tiles", self.tiles_version)
        table = handle.take_row_ids([int(i) for i in ids]).select(["pixels"]).with_row_id().to_arrow()
        found = dict(zip(table.column("_rowid").to_pylist(), table.column("pixels").to_pylist()))
        out = []
        for offset, row_id in enumerate(ids):
            data = found.get(int(row_id))
            if data is None:
                raise DataError(f"slide {work.slide_id}: stored pixels of tile "
                                f"({work.x[spec.start + offset]}, {work.y[spec.start + offset]}) "
                                "are gone (tiles table changed during the run?); rerun")
            fmt = work.pixel_format[spec.start + offset]
            try:
                out.append(decode_pixels(data, fmt, int(work.out_size[spec.start + offset])))
            except (OSError, ValueError) as exc:  # PIL: truncated or not an image
                raise DataError(
                    f"slide {work.slide_id}: stored {fmt} pixels of tile "
                    f"({work.x[spec.start + offset]}, {work.y[spec.start + offset]}) cannot be "
                    f"decoded ({exc}); retile the slide or use --set source=slide") from None
        return out


def _stack(images: list[np.ndarray]) -> np.ndarray:
    """One (n, h, w, 3) array; tiles of another size than the first are resized to it."""
    h, w = images[0].shape[:2]
    if any(img.shape[:2] != (h, w) for img in images):
        from PIL import Image

        images = [img if img.shape[:2] == (h, w) else
                  np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BILINEAR))
                  for img in images]
    return np.ascontiguousarray(np.stack(images))


def worker_init(_: int) -> None:
    """Workers decode pixels; one thread each keeps them from competing with the encoder."""
    torch.set_num_threads(1)


def make_loader(dataset: TileBatches, *, num_workers: int, prefetch_factor: int,
                pin_memory: bool) -> torch.utils.data.DataLoader:
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs = {"multiprocessing_context": "spawn", "prefetch_factor": prefetch_factor,
                  "worker_init_fn": worker_init, "persistent_workers": False}
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False,
                                       num_workers=num_workers, pin_memory=pin_memory, **kwargs)
