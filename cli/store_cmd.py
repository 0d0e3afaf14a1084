"""``pmx store``: inspect and maintain the feature store, and move feature bags in and out."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import click

from pmx.cli.output import echo_json, echo_table
from pmx.errors import DataError


def store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", "store_uri", default=None, envvar="PMX_STORE",
                        show_envvar=True,
                        help="Feature store URI or directory [default: ./.pmx/store].")(func)


def _open(store_uri: str | None, must_exist: bool = True) -> Any:
    from pmx.featurestore import open_store

    store = open_store(store_uri)
    if must_exist and store.local_dir is not None and not store.local_dir.exists():
        raise DataError(f"no feature store at {store.local_dir}; run a stage first or pass "
                        "--store (or set PMX_STORE)")
    return store


def _human(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


@click.group()
def store() -> None:
    """Inspect and maintain the feature store; import or export feature bags."""


@store.command()
@store_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(store_uri: str | None, as_json: bool) -> None:
    """Tables (rows, size, indices) and stages cached in the store."""
    report = _open(store_uri).info()
    if as_json:
        echo_json(report)
        return
    click.echo(f"store {report['uri']} (schema v{report['schema_version']}, "
               f"{_human(report['bytes'])})")
    rows = [[t["table"], t["rows"], _human(t["bytes"]), t["version"], ",".join(t["indices"]) or "-",
             f"{t['dim']} {t['dtype']}" if "dim" in t else ""] for t in report["tables"]]
    echo_table(["table", "rows", "size", "version", "indices", "vectors"], rows)
    if report["stages"]:
        click.echo("")
        echo_table(["stage", "cached outputs"],
                   [[stage, ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))]
                    for stage, counts in sorted(report["stages"].items())])


@store.command()
@store_option
@click.option("--stage", "stage_name", default=None, help="Only this stage (tile, embed, ...).")
@click.option("--units", "unit_key", default=None, metavar="KEY",
              help="Show the units of the stage output with this key.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def artifacts(store_uri: str | None, stage_name: str | None, unit_key: str | None,
              as_json: bool) -> None:
    """Cached stage outputs: key, fingerprint, status, units done, rows (the lineage)."""
    import polars as pl

    from pmx.featurestore import sql_literal

    store = _open(store_uri)
    if unit_key:
        where = f"key = {sql_literal(unit_key)} AND unit != '*'"
        frame = store.read("artifacts", where=where,
                           columns=["unit", "status", "rows", "started_at", "finished_at", "host"])
        frame = frame.sort("unit")
    else:
        where = "unit = '*'" + (f" AND stage = {sql_literal(stage_name)}" if stage_name else "")
        frame = store.read("artifacts", where=where, columns=[
            "stage", "key", "fingerprint", "status", "units", "rows", "inputs", "finished_at"])
        done = store.read("artifacts", where="unit != '*' AND status = 'done'", columns=["key"])
        counts = done.group_by("key").len(name="done") if done.height else pl.DataFrame(
            {"key": [], "done": []}, schema={"key": pl.String, "done": pl.UInt32})
        frame = frame.join(counts, on="key", how="left").with_columns(pl.col("done").fill_null(0))
        frame = frame.sort(["stage", "finished_at"], nulls_last=True)
    if as_json:
        echo_json(frame.to_dicts())
        return
    if frame.height == 0:
        click.echo("no cached stage outputs" + (f" for stage {stage_name}" if stage_name else ""))
        return
    if unit_key:
        echo_table(frame.columns, frame.rows())
        return
    echo_table(["stage", "key", "fingerprint", "status", "units", "rows", "inputs", "finished"],
               [[r["stage"], r["key"], r["fingerprint"], r["status"], f"{r['done']}/{r['units']}",
                 r["rows"], ",".join(r["inputs"] or []) or "-",
                 r["finished_at"].strftime("%Y-%m-%d %H:%M") if r["finished_at"] else "-"]
                for r in frame.iter_rows(named=True)])


@store.command()
@store_option
@click.option("--keep-days", default=7.0, show_default=True, type=float,
              help="Keep table versions (lineage snapshots) newer than this many days.")
@click.option("--drop-encoder", "drop_encoders", multiple=True, metavar="FINGERPRINT",
              help="Also delete this encoder's embeddings and their cache records (repeatable).")
@click.option("--dry-run", is_flag=True, help="Say what would be done; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def gc(store_uri: str | None, keep_days: float, drop_encoders: tuple[str, ...], dry_run: bool,
       as_json: bool) -> None:
    """Compact tables, refresh indices and delete old versions (and dropped encoders)."""
    from pmx.featurestore import schemas, sql_in

    store = _open(store_uri)
    unknown = [e for e in drop_encoders if e not in store.encoders()]
    if unknown:
        raise DataError(f"no embeddings for encoder(s) {', '.join(unknown)}; encoders: "
                        f"{', '.join(store.encoders()) or '(none)'}")
    before = store.size_bytes()
    report: dict[str, Any] = {"dry_run": dry_run, "dropped": list(drop_encoders),
                              "bytes_before": before}
    if not dry_run:
        for encoder in drop_encoders:
            store.drop_table(schemas.embeddings_table_name(encoder))
            if store.has_table("artifacts"):
                store.delete("artifacts", sql_in("fingerprint", [encoder]))
        report["tables"] = store.optimize(keep_versions_days=keep_days)
        store.refresh_indices()
    report["bytes_after"] = store.size_bytes()
    if as_json:
        echo_json(report)
        return
    verb = "would drop" if dry_run else "dropped"
    for encoder in drop_encoders:
        click.echo(f"{verb} embeddings of encoder {encoder}")
    if dry_run:
        click.echo(f"would compact {len(store.table_names())} table(s) and delete versions older "
                   f"than {keep_days:g} day(s); store is {_human(before)}")
    else:
        click.echo(f"compacted {len(report['tables'])} table(s): {_human(before)} -> "
                   f"{_human(report['bytes_after'])}")


@store.command("export-h5")
@store_option
@click.option("--encoder", required=True, help="Encoder fingerprint whose vectors to export.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for one file per slide.")
@click.option("--slide", "slides", multiple=True, help="Only this slide (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["h5", "pt"]), default="h5", show_default=True,
              help="h5: features + coords (CLAM/TRIDENT); pt: a features tensor (CLAM .pt).")
def export_h5(store_uri: str | None, encoder: str, out_dir: Path, slides: tuple[str, ...],
              fmt: str) -> None:
    """Write per-slide feature bags (CLAM/TRIDENT .h5, or .pt) from the store."""
    from pmx.featurestore.interop import export_bags

    paths = export_bags(_open(store_uri), encoder, out_dir, slide_ids=list(slides) or None, fmt=fmt)
    click.echo(f"wrote {len(paths)} {fmt} file(s) to {out_dir}")


def _read_patient_map(path: Path) -> dict[str, str]:
    try:
        with path.open(newline="") as handle:
            sample = handle.read(4096)
            handle.seek(0)
            dialect = csv.Sniffer().sniff(sample, delimiters=",\t") if sample else csv.excel
            reader = csv.DictReader(handle, dialect=dialect)
            if not reader.fieldnames or not {"slide_id", "patient_id"} <= set(reader.fieldnames):
                raise DataError(f"{path}: needs columns slide_id and patient_id "
                                f"(found: {', '.join(reader.fieldnames or [])})")
            return {row["slide_id"]: row["patient_id"] for row in reader}
    except FileNotFoundError:
        raise DataError(f"patient map {path} does not exist") from None


@store.command("import-h5")
@store_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--encoder", required=True,
              help="Name the vectors are stored under (e.g. uni-v1 or an encoder fingerprint).")
@click.option("--tiler", default="imported", show_default=True, help="Tiler name for the tile key.")
@click.option("--patients", "patient_map", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV/TSV with slide_id,patient_id [default: slides table, else TCGA barcode].")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default=None,
              help="Stored vector type [default: as in the files].")
@click.option("--force", is_flag=True, help="Re-import files already imported.")
def import_h5(store_uri: str | None, paths: tuple[Path, ...], encoder: str, tiler: str,
              patient_map: Path | None, dtype: str | None, force: bool) -> None:
    """Import per-slide feature bags: CLAM/TRIDENT .h5 (features, coords) or .pt files."""
    from pmx.featurestore.interop import import_bags

    store = _open(store_uri, must_exist=False)
    patients = _read_patient_map(patient_map) if patient_map else None
    written = import_bags(store, paths, encoder, tiler=tiler, patients=patients, dtype=dtype,
                          force=force)
    click.echo(f"imported {len(written)} slide(s), {sum(written.values())} vectors under encoder "
               f"{encoder}" + (" (the rest were already imported)" if not force else ""))
