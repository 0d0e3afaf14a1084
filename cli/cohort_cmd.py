"""``pmx demo-data``, ``pmx ingest`` and ``pmx cohort info``: cohorts in and out of the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from pmx.cli.output import echo_json, echo_table


def _store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", "store_uri", default=None, envvar="PMX_STORE", show_envvar=True,
                        help="Feature store URI or directory [default: ./.pmx/store].")(func)


@click.command("demo-data")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--patients", default=150, show_default=True, help="Number of patients.")
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed = same cohort).")
@click.option("--slide-size", default=2048, show_default=True,
              help="Level-0 slide width in pixels at 20x (height is 3/4 of it).")
@click.option("--missing", default=0.0, show_default=True,
              help="Probability that each modality is absent for a patient (e.g. 0.2).")
@click.option("--workers", default=None, type=int, help="Slide-rendering processes [default: CPU count].")
@click.option("--overwrite", is_flag=True, help="Write into a folder that already holds a cohort.")
@click.option("--json", "as_json", is_flag=True, help="Print the truth summary as JSON.")
def demo_data(out_dir: Path, patients: int, seed: int, slide_size: int, missing: float, workers: int | None,
              overwrite: bool, as_json: bool) -> None:
    """Write a synthetic cohort with planted survival signal to OUT_DIR.

    Slides are Aperio-style pyramidal TIFFs, omics are GDC files (STAR counts, miRNA
    quantification, methylation betas), survival is a GDC clinical table; manifest.toml ties
    them together for `pmx ingest`. truth.json holds the oracle C-index and the C-index each
    modality can reach; planted.json the planted omics features.
    """
    from pmx.cohorts.demo import DemoSettings, generate_demo_cohort

    settings = DemoSettings(patients=patients, seed=seed, slide_size=slide_size, missing=missing, workers=workers)
    demo = generate_demo_cohort(out_dir, settings, progress=not as_json, overwrite=overwrite)
    if as_json:
        echo_json({"root": str(demo.root), "manifest": str(demo.manifest), "slides": demo.n_slides, **demo.truth})
        return
    truth = demo.truth
    click.echo(f"demo cohort written to {demo.root}: {truth['n_patients']} patients, {demo.n_slides} slides, "
               f"{truth['censoring_fraction']:.0%} censored")
    click.echo("reachable C-index: " + ", ".join(f"{k} {v:.3f}" for k, v in truth["c_index"].items()))
    click.echo(f"next: pmx ingest {demo.manifest}")


@click.command("ingest")
@click.argument("manifest", type=click.Path(path_type=Path))
@_store_option
@click.option("--check", is_flag=True, help="Validate only: print the report and write nothing.")
@click.option("--force", is_flag=True, help="Rewrite even if this exact cohort was ingested already.")
@click.option("--json", "as_json", is_flag=True, help="Print the result and the validation report as JSON.")
def ingest(manifest: Path, store_uri: str | None, check: bool, force: bool, as_json: bool) -> None:
    """Validate the cohort described by MANIFEST and write it to the feature store.

    Any error in the validation report stops the ingest before anything is written; warnings
    (dropped patients, resolved duplicates, ...) are printed and the ingest goes on.
    """
    from pmx.cohorts import load_cohort, load_manifest
    from pmx.cohorts.ingestion import write_cohort
    from pmx.featurestore import open_store

    cohort = load_cohort(load_manifest(manifest))
    if check:
        if as_json:
            echo_json({"cohort": cohort.name, "summary": cohort.summary(), "validation": cohort.report.as_dict()})
        else:
            click.echo(cohort.report.format())
        if not cohort.report.ok:
            raise click.exceptions.Exit(2)
        return
    cohort.report.raise_if_errors(f"cohort {cohort.name}")
    result = write_cohort(cohort, open_store(store_uri), force=force)
    if as_json:
        echo_json(result.as_dict())
        return
    if cohort.report.warnings:
        click.echo(cohort.report.format(), err=True)
    if result.cached:
        click.echo(f"cohort {cohort.name} is already in the store unchanged (ingest {result.key}); --force rewrites")
    else:
        written = ", ".join(f"{unit} {n}" for unit, n in result.rows.items())
        click.echo(f"ingested cohort {cohort.name} (ingest {result.key}): {written}")


@click.group("cohort")
def cohort() -> None:
    """Inspect cohorts (in the store, or straight from a manifest)."""


def _print_summary(summary: dict[str, Any]) -> None:
    click.echo(f"cohort {summary['cohort']}: {summary['patients']} patients, {summary['events']} events "
               f"({summary['censoring_fraction']:.0%} censored), median follow-up "
               f"{summary['median_time_days']:.0f} days"
               + (f", {summary['slides']} slides" if "slides" in summary else ""))
    rows = [[m["modality"], m["patients"], f"{m['fraction']:.0%}", m["events"], m.get("features", "")]
            for m in summary["modalities"]]
    if rows:
        click.echo("")
        echo_table(["modality", "patients", "share", "events", "features"], rows)
        click.echo("")
        echo_table(["available modalities", "patients"],
                   [[c["modalities"], c["patients"]] for c in summary["combinations"]])


@cohort.command("info")
@click.argument("manifest", required=False, type=click.Path(path_type=Path))
@_store_option
@click.option("--cohort", "name", default=None,
              help="Only this cohort of the store (its name); a manifest folder works too, as "
                   "with `pmx run --cohort DIR`.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(manifest: Path | None, store_uri: str | None, name: str | None, as_json: bool) -> None:
    """Patients, events and per-modality availability.

    Without MANIFEST, reads the cohorts ingested into the store; with MANIFEST, reads the files
    directly (nothing is written) and also shows the validation report.
    """
    if manifest is None and name is not None and (Path(name) / "manifest.toml").is_file():
        manifest, name = Path(name), None  # `--cohort DIR` means a manifest everywhere else
    if manifest is not None:
        from pmx.cohorts import load_cohort

        loaded = load_cohort(manifest)
        summary = loaded.summary()
        if as_json:
            echo_json({**summary, "validation": loaded.report.as_dict()})
            return
        _print_summary(summary)
        click.echo("")
        click.echo(loaded.report.format())
        return
    from pmx.cohorts.info import store_summary
    from pmx.errors import DataError
    from pmx.featurestore import open_store

    store = open_store(store_uri)
    if store.local_dir is not None and not store.local_dir.exists():
        raise DataError(f"no feature store at {store.local_dir}; run `pmx ingest MANIFEST` first or pass --store")
    summaries = store_summary(store, name) if store.has_table("patients") else []
    if not summaries:
        raise DataError(f"the store at {store.uri} has no {'cohort ' + repr(name) if name else 'patients'}; "
                        "run `pmx ingest MANIFEST` first")
    if as_json:
        echo_json(summaries[0] if len(summaries) == 1 else summaries)
        return
    for n, summary in enumerate(summaries):
        if n:
            click.echo("")
        _print_summary(summary)
