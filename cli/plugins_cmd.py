"""``pmx plugins`` and ``pmx components``."""

from __future__ import annotations

import click

from pmx.cli.output import echo_json, echo_table
from pmx.components import KINDS
from pmx.plugins import get_host


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List loaded plugins, their hooks and components, and any load errors."""
    host = get_host()
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
@click.option("--kind", type=click.Choice(KINDS), help="Only components of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def components(kind: str | None, as_json: bool) -> None:
    """List registered components with their config fields, defaults and docs."""
    registry = get_host().registry
    described = [reg.describe() for reg in registry.registrations(kind)]
    if as_json:
        echo_json(described)
        return
    if not described:
        click.echo("no components registered" + (f" of kind {kind}" if kind else ""))
        return
    for comp in described:
        click.secho(
            f"{comp['kind']}:{comp['name']} v{comp['version']}  [{comp['plugin']}]", bold=True
        )
        if comp["summary"]:
            click.echo(f"    {comp['summary']}")
        for field in comp["config"]:
            click.echo(f"    {field['name']} ({field['type']}, default {field['default']!r}): {field['doc']}")
