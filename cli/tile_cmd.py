"""``pmx tile --tiler NAME``: tile slides into the feature store (or Parquet files)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from pmx.cli.output import echo_json


@click.command("tile")
@click.argument("slides", nargs=-1, type=click.Path(path_type=Path))
@click.option("--tiler", "tiler_name", required=True,
              help="Registered tiler: grid, representative-region, region, hsv-scored, ...")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Tiler config override, e.g. --set size=512 --set magnification=40 (repeatable).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="TOML file of tiler config values (applied before --set).")
@click.option("--store", "store_uri", default=None, envvar="PMX_STORE", show_envvar=True,
              help="Feature store URI or directory [default: ./.pmx/store].")
@click.option("--cohort", type=click.Path(path_type=Path), default=None,
              help="Cohort manifest (or its folder) whose slides to tile.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write one Parquet file per slide under this folder instead of the store.")
@click.option("--mpp-csv", type=click.Path(path_type=Path), default=None,
              help="CSV/TSV with columns slide_id or path, and mpp: per-slide pixel size overrides.")
@click.option("--workers", type=int, default=0, show_default=True,
              help="Slides tiled in parallel (processes); 0 = one per CPU core.")
@click.option("--force", is_flag=True, help="Recompute slides that are already tiled.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def tile(slides: tuple[Path, ...], tiler_name: str, sets: tuple[str, ...],
         config_file: Path | None, store_uri: str | None, cohort: Path | None,
         out_dir: Path | None, mpp_csv: Path | None, workers: int, force: bool, as_json: bool,
         no_progress: bool) -> None:
    """Tile SLIDES (files or folders), a --cohort, or the store's ingested slides.

    Tile records (coordinates, tissue fraction, score, and pixels when the tiler's `pixels`
    setting asks for them) go to the store's `tiles` table; finished slides are recorded, so a
    rerun (or a run after a kill) only does the missing ones. Run `pmx components tiler` to see
    each tiler's settings.
    """
    from pmx.config import deep_merge, load_config_file, parse_set_option
    from pmx.plugins import get_registry
    from pmx.slides import load_mpp_overrides
    from pmx.tiling import ParquetSink, StoreSink, run_tiling
    from pmx.tiling.sources import slide_refs

    tiler_cls = get_registry().get("tiler", tiler_name)
    values: dict = {}
    if config_file is not None:
        values = deep_merge(values, load_config_file(config_file))
    for option in sets:
        values = deep_merge(values, parse_set_option(option))
    tiler = tiler_cls(values)

    overrides = load_mpp_overrides(mpp_csv) if mpp_csv is not None else None
    store = None
    if out_dir is None or not (slides or cohort):
        from pmx.featurestore import open_store

        store = open_store(store_uri)
    refs = slide_refs(slides, cohort, store, overrides)

    if out_dir is not None:
        sink = ParquetSink(out_dir)
        where = str(out_dir)
    else:
        params = {"mpp_overrides": overrides} if overrides else None
        sink = StoreSink(store, params=params)
        where = store.uri  # type: ignore[union-attr]
    logging.getLogger("pmx.tiling").info("tiling %d slide(s) with %s [%s] into %s",
                                         len(refs), tiler.name, tiler.fingerprint, where)
    summary = run_tiling(tiler, refs, sink, workers=workers, force=force,
                         progress=not no_progress and not as_json)
    payload = {**summary.as_dict(), "destination": where}
    if as_json:
        echo_json(payload)
        return
    click.echo(f"tiler {tiler.name} [{tiler.fingerprint}]: {summary.tiles} tile(s) from "
               f"{summary.computed} slide(s) in {summary.seconds:.1f} s; {summary.skipped} "
               f"already done -> {where}")
