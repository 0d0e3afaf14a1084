"""The two calls a method recipe needs: tile the store's slides, and read the tiles back."""

from __future__ import annotations

from typing import Any, Sequence

from .base import Tiler
from .runner import SlideRef, TilingSummary, run_tiling
from .sinks import StoreSink
from .sources import slides_from_store


def tile_store_slides(tiler: Tiler, store: Any, *, slides: Sequence[SlideRef] | None = None,
                      workers: int = 0, force: bool = False, progress: bool = True
                      ) -> TilingSummary:
    """Tile ``slides`` (default: every slide of the store's ``slides`` table) into the store.

    Cached per slide: a second call with the same tiler config is a cache hit.
    """
    refs = list(slides) if slides is not None else slides_from_store(store)
    return run_tiling(tiler, refs, StoreSink(store), workers=workers, force=force,
                      progress=progress)


def load_tiles(store: Any, tiler: Tiler | str, *, slide_id: str | None = None,
               patient_id: str | None = None, subpatches: bool = False,
               columns: Sequence[str] | None = None) -> Any:
    """A tiler's tiles from the store as a polars DataFrame (optionally one slide or patient).

    ``subpatches=True`` returns the region tiler's sub-patch rows instead of the regions.
    """
    from pmx.featurestore import sql_literal

    fingerprint = tiler if isinstance(tiler, str) else tiler.fingerprint
    if subpatches:
        fingerprint += ".sub"
    clauses = [f"tiler = {sql_literal(fingerprint)}"]
    if slide_id is not None:
        clauses.append(f"slide_id = {sql_literal(slide_id)}")
    if patient_id is not None:
        clauses.append(f"patient_id = {sql_literal(patient_id)}")
    frame = store.read("tiles", where=" AND ".join(clauses), columns=columns)
    order = [c for c in ("slide_id", "y", "x") if c in frame.columns]
    return frame.sort(order) if order else frame
