"""``pmx embed --encoder NAME``: embed a tiling's tiles into the store, on one or many GPUs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from pmx.cli.output import echo_json

log = logging.getLogger("pmx.embedding")


def _split_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(stage settings, encoder settings): ``encoder.*`` keys configure the encoder."""
    values = dict(values)
    encoder = values.pop("encoder", {})
    if not isinstance(encoder, dict):
        from pmx.errors import ConfigError

        raise ConfigError("`encoder` takes sub-keys, e.g. --set encoder.weights=PATH")
    return values, encoder


def torchrun_command(nproc: int, args: list[str]) -> list[str]:
    """The torchrun launch of ``pmx embed ARGS`` on this node with ``nproc`` processes."""
    return [sys.executable, "-m", "pmx.torchrun", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "pmx.cli", "embed", *args]


def _relaunch_args(params: dict[str, Any]) -> list[str]:
    """The command line of this invocation without ``--gpus`` (for each torchrun rank)."""
    args = [str(p) for p in params["slides"]]
    args += ["--encoder", params["encoder_name"]]
    for option, key in (("--store", "store_uri"), ("--tiler", "tiler"), ("--device", "device"),
                        ("--config", "config_file"), ("--cohort", "cohort"), ("--mpp-csv", "mpp_csv")):
        if params[key] is not None:
            args += [option, str(params[key])]
    for option in params["sets"]:
        args += ["--set", option]
    for flag, key in (("--force", "force"), ("--json", "as_json"), ("--no-progress", "no_progress")):
        if params[key]:
            args.append(flag)
    return args


@click.command("embed")
@click.argument("slides", nargs=-1, type=click.Path(path_type=Path))
@click.option("--encoder", "encoder_name", required=True,
              help="Registered tile encoder: resnet50-trunc, vit-s16, vit-b16, or a plugin's.")
@click.option("--store", "store_uri", default=None, envvar="PMX_STORE", show_envvar=True,
              help="Feature store URI or directory [default: ./.pmx/store].")
@click.option("--tiler", default=None,
              help="Tiling to embed: tiler fingerprint or name [default: the only one].")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Setting (repeatable): batch_size=512, compile=true, precision=fp32, "
                   "encoder.weights=PATH, encoder.random_init=true, ...")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="TOML file of settings (an [encoder] table configures the encoder).")
@click.option("--gpus", type=int, default=0, show_default=True,
              help="Processes to launch with torchrun, one per GPU (CPU processes with gloo when "
                   "there is no GPU); 0 or 1 = this process only.")
@click.option("--device", default=None, help="auto (default), cpu, cuda, cuda:1, ...")
@click.option("--cohort", type=click.Path(path_type=Path), default=None,
              help="Cohort manifest whose slide files to read (when the store has no paths).")
@click.option("--mpp-csv", type=click.Path(path_type=Path), default=None,
              help="Per-slide pixel size overrides (as given to `pmx tile`).")
@click.option("--force", is_flag=True, help="Recompute slides that are already embedded.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def embed(slides: tuple[Path, ...], encoder_name: str, store_uri: str | None, tiler: str | None,
          sets: tuple[str, ...], config_file: Path | None, gpus: int, device: str | None,
          cohort: Path | None, mpp_csv: Path | None, force: bool, as_json: bool,
          no_progress: bool) -> None:
    """Embed the tiles of a tiling with a frozen tile encoder into the store.

    Tiles are read from the slides by coordinates (SLIDES files/folders, --cohort, or the
    store's slides table give their paths) or from stored pixels; vectors go to the store keyed
    by the encoder's fingerprint. Finished slides are recorded, so a rerun (or a run after a
    kill) only does the missing ones. With --gpus N (or under torchrun) slides are sharded
    across ranks and one commit publishes every rank's vectors.
    """
    from pmx.config import build_config, deep_merge, load_config_file, parse_set_option
    from pmx.embedding import EmbedConfig, embed as run_embed
    from pmx.ranks import env_from_torchrun
    from pmx.errors import ConfigError
    from pmx.plugins import get_registry

    params = click.get_current_context().params
    ranks = env_from_torchrun()
    if gpus > 1 and not ranks.is_distributed:
        if device != "cpu":  # (no torch import in the launcher when the ranks run on CPU)
            import torch

            if torch.cuda.is_available() and gpus > torch.cuda.device_count():
                raise ConfigError(f"--gpus {gpus}: this machine has {torch.cuda.device_count()} "
                                  "GPU(s); for several nodes launch torchrun yourself "
                                  "(see docs/embedding.md)")
            if not torch.cuda.is_available():
                log.warning("no CUDA device: running %d CPU processes (gloo)", gpus)
        command = torchrun_command(gpus, _relaunch_args(params))
        log.info("launching: %s", " ".join(command))
        verbose = click.get_current_context().find_root().params.get("verbose") or 0
        result = subprocess.run(command, env={**os.environ, "PMX_VERBOSE": str(verbose)})
        sys.exit(result.returncode)

    values: dict[str, Any] = {}
    if config_file is not None:
        values = deep_merge(values, load_config_file(config_file))
    for option in sets:
        values = deep_merge(values, parse_set_option(option))
    stage_values, encoder_values = _split_values(values)
    # the summary repeats the random-init warning once; no Python warning in the middle of it
    warnings.filterwarnings("ignore", message=".*random initialisation", category=UserWarning)
    if tiler is not None:
        stage_values["tiler"] = tiler
    if device is not None:
        stage_values["device"] = device
    config = build_config(EmbedConfig, stage_values, owner="pmx embed")
    encoder = get_registry().create("encoder", encoder_name, encoder_values)

    from pmx.featurestore import open_store

    store = open_store(store_uri)
    slide_paths = _slide_paths(store, slides, cohort, mpp_csv)
    summary = run_embed(store, encoder, config, slide_paths=slide_paths, force=force,
                        progress=not no_progress and not as_json, ranks=ranks)
    if not ranks.is_main:
        return
    if as_json:
        echo_json({**summary.as_dict(), "store": store.uri})
        return
    click.echo(
        f"encoder {summary.encoder} [{summary.fingerprint}] on tiling {summary.tiler}: "
        f"{summary.tiles} tile(s) from {summary.computed} slide(s) in "
        f"{summary.compute_seconds:.1f} s ({summary.tiles_per_s:.1f} tiles/s, {summary.world} "
        f"process(es), {summary.device}, {summary.precision}); {summary.cached} already done; "
        f"{summary.committed} published -> {store.uri} table {summary.table}")
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)


def _slide_paths(store: Any, slides: tuple[Path, ...], cohort: Path | None,
                 mpp_csv: Path | None) -> dict[str, tuple[str, float | None]]:
    """Slide files (and mpp overrides) from SLIDES or --cohort; with only --mpp-csv, the
    store's slides with the overrides applied; else nothing (the store's slides table)."""
    if not slides and cohort is None and mpp_csv is None:
        return {}
    from pmx.slides import load_mpp_overrides
    from pmx.tiling.sources import slide_refs

    overrides = load_mpp_overrides(mpp_csv) if mpp_csv is not None else None
    return {ref.slide_id: (ref.path, ref.mpp) for ref in slide_refs(slides, cohort, store, overrides)}
