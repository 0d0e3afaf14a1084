"""``pmx run plugin:NAME``: resolve a method recipe and its config, then run it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from pmx.cli.output import echo_json
from pmx.errors import ConfigError, UnknownComponentError
from pmx.methods import Method, RunContext, default_store
from pmx.plugins import get_host


def resolve_method(target: str) -> type[Method]:
    """``plugin:NAME`` -> method class: NAME is a method name, or a plugin with one method."""
    name = target.split(":", 1)[1] if target.startswith("plugin:") else target
    host = get_host()
    registry = host.registry
    if ("method", name) in registry:
        return registry.get("method", name)  # type: ignore[return-value]
    info = host.plugins.get(name)
    if info is not None:
        methods = [n for k, n in info.components if k == "method"]
        if len(methods) == 1:
            return registry.get("method", methods[0])  # type: ignore[return-value]
    available = ", ".join(f"plugin:{n}" for n in registry.names("method")) or "(none installed)"
    hint = ""
    if host.errors:
        hint = f" Plugins that failed to load: {', '.join(host.errors)} (see `pmx plugins`)."
    raise UnknownComponentError(
        f"no method {name!r}. Available methods: {available}.{hint} "
        "Install a method plugin (e.g. pip install ./plugins/pmx-contramae)."
    )


def _toml_dump(data: dict, prefix: str = "") -> str:
    """Minimal TOML writer for resolved configs (sections of scalars and lists)."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines = [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
    for key, table in tables.items():
        name = f"{prefix}{key}"
        body = _toml_dump(table, prefix=f"{name}.")
        lines.append(f"\n[{name}]\n{body}".rstrip())
    return "\n".join(lines).strip() + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return '""'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@click.command(context_settings={"show_default": True})
@click.argument("target")
@click.option("--preset", default=None, help="tiny (CPU demo), small, or paper (published hyperparameters).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config key (repeatable), e.g. finetune.lr=1e-4.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file of config overrides.")
@click.option("--print-config", is_flag=True, help="Print the resolved config (TOML, or JSON with --json) and exit.")
@click.option("--json", "as_json", is_flag=True, help="JSON output for --print-config / --dry-run.")
@click.option("--dry-run", is_flag=True, help="Build the models and print parameter counts; touch no data.")
@click.option("--cohort", type=click.Path(file_okay=False, path_type=Path), help="Cohort folder (manifest).")
@click.option("--demo", is_flag=True, help="Run on the built-in synthetic demo cohort.")
@click.option("--store", default=None, help="Feature store URI or directory [default: $PMX_STORE or ./.pmx/store].")
@click.option("--out", "out_dir", default="runs", type=click.Path(file_okay=False, path_type=Path), help="Where run directories are written.")
@click.option("--seed", default=0, type=int, help="Random seed (folds, init, sampling).")
@click.option("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
@click.option("--gpus", default=0, type=int, help="Launch this many processes with torchrun (one per GPU).")
@click.option("--force", is_flag=True, help="Recompute cached stages.")
def run(target: str, preset: str | None, sets: tuple[str, ...], config_file: str | None,
        print_config: bool, as_json: bool, dry_run: bool, cohort: Path | None, demo: bool,
        store: str | None, out_dir: Path, seed: int, device: str, gpus: int, force: bool) -> None:
    """Run a method recipe: pmx run plugin:NAME."""
    method_cls = resolve_method(target)
    config = method_cls.resolve_config(preset, config_file, sets)
    preset = preset or method_cls.default_preset
    if print_config:
        data = config.model_dump(mode="json")
        if as_json:
            echo_json(data)
        else:
            click.echo(_toml_dump(data), nl=False)
        return
    method = method_cls(config)
    context = RunContext(
        method=method_cls.name, preset=preset, store=store or default_store(), out_dir=out_dir,
        cohort=cohort, seed=seed, device=device, gpus=gpus, force=force, demo=demo,
    )
    if dry_run:
        report = method.dry_run(context)
        if as_json:
            echo_json(report)
        else:
            for key, value in report.items():
                click.echo(f"{key}: {value}")
        return
    if gpus > 1 and not method_cls.distributed:
        raise ConfigError(f"method {method_cls.name!r} trains in one process, so --gpus {gpus} would "
                          f"run {gpus} copies of it; drop --gpus (--device cuda uses one GPU)")
    if gpus > 1:  # re-run this command under torchrun (returns at once inside a worker)
        from pmx.training.launch import relaunch_under_torchrun

        relaunch_under_torchrun(gpus, device)
    method.run(context)
