"""``pmx plugins`` and ``pmx components``.

``pmx plugins`` only loads plugins, which imports no component code (components registered by
import path stay unimported), so it is fast; ``--check`` imports every component to find broken
ones. ``pmx components`` imports the components it describes (it needs their config classes):
narrow it with a kind, or a kind and a name, to import less.
"""

from __future__ import annotations

import click

from pmx.cli.output import echo_json, echo_table
from pmx.components import KINDS
from pmx.errors import PluginError
from pmx.plugins import get_host


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True,
              help="Also import every registered component (slower) and report those that fail.")
def plugins(as_json: bool, check: bool) -> None:
    """List loaded plugins, their hooks and components, and any load errors."""
    host = get_host()
    if check:
        host.check()
    infos = [info.as_dict() for info in host.plugins.values()]
    if as_json:
        echo_json(infos)
        return
    rows = [
        (
            i["name"] + (" (built-in)" if i["builtin"] else ""),
            i["version"] or "",
            i["distribution"] or "",
            ", ".join(f"{c['kind']}:{c['name']}" for c in i["components"]) or "-",
        )
        for i in infos
    ]
    echo_table(["plugin", "version", "distribution", "components"], rows)
    for info in infos:
        for error in info["errors"]:
            click.secho(f"! {info['name']} ({info['distribution'] or '?'}): {error}", fg="red", err=True)
    if host.skipped:
        click.echo(f"(not loaded, not in PMX_LOAD_PLUGINS: {', '.join(host.skipped)})")


@click.command()
@click.argument("kind_arg", metavar="[KIND]", required=False, type=click.Choice(KINDS))
@click.argument("name", required=False)
@click.option("--kind", type=click.Choice(KINDS), help="Only components of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def components(kind_arg: str | None, name: str | None, kind: str | None, as_json: bool) -> None:
    """List registered components with their config fields, defaults and docs.

    `pmx components method cmta` shows one component; `pmx components tiler` one kind.
    """
    if kind_arg and kind and kind_arg != kind:
        raise click.UsageError(f"two kinds given: {kind_arg} and --kind {kind}")
    kind = kind_arg or kind
    registry = get_host().registry
    if name is not None:
        assert kind is not None  # click fills KIND before NAME
        registrations = [registry.lookup(kind, name)]  # UnknownComponentError names the others
    else:
        registrations = list(registry.registrations(kind))
    described, failed = [], []
    for reg in registrations:
        try:
            described.append(reg.describe())
        except PluginError as exc:
            if name is not None:
                raise
            failed.append(str(exc))
    if as_json:
        echo_json(described)
    elif not described and not failed:
        click.echo("no components registered" + (f" of kind {kind}" if kind else ""))
    for comp in [] if as_json else described:
        click.secho(
            f"{comp['kind']}:{comp['name']} v{comp['version']}  [{comp['plugin']}]", bold=True
        )
        if comp["summary"]:
            click.echo(f"    {comp['summary']}")
        for field in comp["config"]:
            click.echo(f"    {field['name']} ({field['type']}, default {field['default']!r}): {field['doc']}")
    for error in failed:
        click.secho(f"! {error}", fg="red", err=True)

