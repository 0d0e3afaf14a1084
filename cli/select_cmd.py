"""``pmx select --selector NAME``: fit an omics selector per fold and report what it kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pmx.cli.output import echo_json, echo_table


def _selector(name: str, config_file: str | None, sets: tuple[str, ...]) -> Any:
    from pmx.config import deep_merge, load_config_file, parse_set_option
    from pmx.plugins import get_registry

    cls = get_registry().get("selector", name)
    values: dict[str, Any] = load_config_file(config_file) if config_file else {}
    for option in sets:
        values = deep_merge(values, parse_set_option(option))
    return cls(values)


def _manifest_or_name(cohort: str | None) -> tuple[Path | None, str | None]:
    """Split ``--cohort`` into a manifest path (as in ``pmx tile``) or a store cohort name (as
    in ``pmx cohort info``).

    A value that exists on disk, has a path separator or ends in .toml / .json is a manifest, so
    a mistyped path says "manifest ... does not exist" rather than "no cohort named ...".
    """
    if cohort is None:
        return None, None
    path = Path(cohort)
    if path.exists() or len(path.parts) > 1 or path.suffix.lower() in (".toml", ".json"):
        return path, None
    return None, cohort


def _folds(inputs: Any, store: Any, split: str | None, n_folds: int, seed: int, val_fraction: float) -> Any:
    from pmx.evaluation.splits import load_folds, make_folds, save_folds

    if split:
        if store is None:
            raise click.UsageError("--split needs the store (drop --no-store)")
        return load_folds(store, split)
    survival = inputs.survival.loc[inputs.patients]
    folds = make_folds(list(survival.index), survival["event"].to_numpy(), n_folds=n_folds,
                       val_fraction=val_fraction, seed=seed, time=survival["time"].to_numpy())
    if store is not None:
        save_folds(folds, store)  # every method then runs on the same folds
    return folds


def _markdown(report: dict[str, Any], selector: str) -> str:
    lines = [f"# Omics selection: {selector}", ""]
    for fold in report["folds"]:
        state = "cached" if fold["cached"] else f"{fold['seconds']} s"
        lines += [f"## Fold {fold['fold']} ({fold['n_train']} training patients, {state}, key {fold['key']})", ""]
        for group, info in fold["groups"].items():
            steps = ", ".join(f"{k} {v}" for k, v in info.items()
                              if k not in ("features", "width", "selected") and not isinstance(v, (list, dict)))
            lines += [f"### {group}: {info['selected']} features (width {info['width']})", ""]
            if steps:
                lines += [steps, ""]
            lines += [", ".join(info["features"]), ""]
    lines += ["## Stability", ""]
    for group, info in report["stability"].items():
        lines.append(f"- {group}: {info['in_every_fold']} features selected in every fold")
    return "\n".join(lines) + "\n"


def _detail(info: dict[str, Any]) -> str:
    """The few step counts worth a glance (deseq2-rsf); the report file has all of them."""
    parts = []
    if "tested" in info:
        parts.append(f"{info.get('test', 'test')} {info['tested']}")
    if "passed_alpha" in info:
        parts.append(f"padj<a {info['passed_alpha']}")
    if "forest_oob_c_index" in info:
        parts.append(f"OOB C {info['forest_oob_c_index']}")
    return ", ".join(parts)


@click.command("select", context_settings={"show_default": True})
@click.option("--selector", "selector_name", required=True, help="Selector name: deseq2-rsf, quantile-normal, gene-families, ...")
@click.option("--store", "store_uri", default=None, envvar="PMX_STORE", show_envvar=True,
              help="Feature store: input (ingested cohort, saved folds) and cache of the selections [default: ./.pmx/store].")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Selector config override (repeatable), e.g. top_k=100.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file of selector config values.")
@click.option("--cohort", metavar="MANIFEST|NAME", default=None,
              help="A cohort manifest (file or folder) to read instead of the store, or the name of a "
                   "cohort ingested into the store: only its patients are used.")
@click.option("--omics", "omics_files", multiple=True, metavar="TYPE=PATH", help="Read a matrix file instead (repeatable).")
@click.option("--clinical", type=click.Path(dir_okay=False), help="Survival table (patient_id, time, event) for --omics.")
@click.option("--modality", "modalities", multiple=True, help="Only these omics types (repeatable) [default: all].")
@click.option("--split", default=None, help="Use the folds saved in the store under this split fingerprint.")
@click.option("--folds", "n_folds", default=5, help="Number of folds when no --split is given.")
@click.option("--seed", default=0, help="Seed of the folds.")
@click.option("--val-fraction", default=0.2, help="Share of each training fold held out for validation.")
@click.option("--fit-on", type=click.Choice(["train", "train+val"]), default="train",
              help="Fold parts the selector is fit on (the test fold never is).")
@click.option("--no-store", is_flag=True, help="Neither read nor write the store (needs --cohort or --omics).")
@click.option("--force", is_flag=True, help="Recompute selections cached in the store.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full per-fold report (.json or .md).")
@click.option("--json", "as_json", is_flag=True, help="Print the per-fold report as JSON.")
def select(selector_name: str, store_uri: str | None, sets: tuple[str, ...], config_file: str | None,
           cohort: str | None, omics_files: tuple[str, ...], clinical: str | None, modalities: tuple[str, ...],
           split: str | None, n_folds: int, seed: int, val_fraction: float, fit_on: str, no_store: bool,
           force: bool, report_path: Path | None, as_json: bool) -> None:
    """Fit an omics selector on the training part of each fold and store its vectors.

    The selector never sees a test patient while fitting; every patient is then transformed
    with the fold's fitted selector. Results are cached in the store by the selector's
    fingerprint and each fold's training patients, so a rerun is instant.
    """
    from pmx.methods import default_store
    from pmx.omics.folds import select_folds, selection_report
    from pmx.omics.inputs import from_cohort, from_files, from_store

    manifest, cohort_name = _manifest_or_name(cohort)
    if omics_files and cohort:
        raise click.UsageError("give --omics files or --cohort, not both")
    if no_store and cohort_name is not None:
        raise click.UsageError(f"--cohort {cohort_name}: there is no manifest file or folder of that name, "
                               "and a cohort of the store needs the store (drop --no-store)")
    selector = _selector(selector_name, config_file, sets)
    store = None
    if not no_store:
        from pmx.featurestore import open_store

        store = open_store(store_uri or default_store())
    if omics_files:
        inputs = from_files(omics_files, clinical)
    elif manifest is not None:
        inputs = from_cohort(manifest, modalities)
    elif store is not None:
        inputs = from_store(store, modalities, cohort=cohort_name)
    else:
        raise click.UsageError("--no-store needs --cohort MANIFEST or --omics TYPE=PATH --clinical PATH")
    if omics_files and modalities:
        from pmx.omics.data import canonical_type

        wanted = {canonical_type(m) for m in modalities}
        inputs.omics = {k: v for k, v in inputs.omics.items() if canonical_type(k) in wanted}

    folds = _folds(inputs, store, split, n_folds, seed, val_fraction)
    parts = ("train", "val") if fit_on == "train+val" else ("train",)
    results = select_folds(selector, inputs.omics, inputs.survival, folds, store=store, force=force,
                           parts=parts, progress=not as_json)
    report = selection_report(results)
    report.update(selector=selector.name, fingerprint=selector.fingerprint,
                  config=selector.config.model_dump(mode="json"), source=inputs.source,
                  split=str(folds["split"][0]), store=None if store is None else str(store.uri))
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        if report_path.suffix.lower() == ".md":
            report_path.write_text(_markdown(report, selector.name))
        else:
            report_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if as_json:
        echo_json(report)
        return
    rows = []
    for fold in report["folds"]:
        for group, info in fold["groups"].items():
            rows.append([fold["fold"], group, info["selected"], info["width"], _detail(info),
                         "cached" if fold["cached"] else fold["seconds"],
                         ", ".join(info["features"][:5]) + (" ..." if info["selected"] > 5 else "")])
    echo_table(["fold", "group", "kept", "width", "steps", "seconds", "first features"], rows)
    stable = ", ".join(f"{g} {i['in_every_fold']}" for g, i in report["stability"].items())
    click.echo(f"selected in every fold: {stable}")
    where = f" in {report['store']}" if report["store"] else ""
    click.echo(f"{selector.name} [{selector.fingerprint}] on split {report['split']}{where}"
               + (f"; full report: {report_path}" if report_path else "; --report FILE for every feature"))
