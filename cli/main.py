"""Root ``pmx`` command group.

Sub-commands live in their own modules and are imported only when invoked, so ``pmx --version``
and ``pmx --help`` stay fast (no torch import). Plugins may add commands through the
``pmx_register_commands`` hook; those are looked up only when a name is not built in.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from pmx import __version__
from pmx.errors import PmxError

#: command name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "plugins": "pmx.cli.plugins_cmd:plugins",
    "components": "pmx.cli.plugins_cmd:components",
    "run": "pmx.cli.run_cmd:run",
    "doctor": "pmx.cli.doctor_cmd:doctor",
    "slide": "pmx.cli.slide_cmd:slide",
    "tile": "pmx.cli.tile_cmd:tile",
    "embed": "pmx.cli.embed_cmd:embed",
    "store": "pmx.cli.store_cmd:store",
    "evaluate": "pmx.cli.evaluate_cmd:evaluate",
    "demo-data": "pmx.cli.cohort_cmd:demo_data",
    "ingest": "pmx.cli.cohort_cmd:ingest",
    "cohort": "pmx.cli.cohort_cmd:cohort",
    "select": "pmx.cli.select_cmd:select",
}


class LazyGroup(click.Group):
    """A click group that imports built-in commands on demand and adds plugin commands."""

    _plugins_added = False

    def _add_plugin_commands(self) -> None:
        if LazyGroup._plugins_added:
            return
        LazyGroup._plugins_added = True
        from pmx.plugins import get_host

        get_host().register_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        command = self.commands.get(cmd_name)
        if command is None:
            self._add_plugin_commands()
            command = self.commands.get(cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PmxError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="pmx")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """pmx: multimodal WSI + omics survival prediction, one plugin per published method."""
    rank = os.environ.get("RANK", "0")  # set by torchrun under --gpus N
    # a relaunched worker (pmx embed --gpus N) gets the launcher's -v/-vv through PMX_VERBOSE
    verbose = max(verbose, int(os.environ.get("PMX_VERBOSE", "0") or 0))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s " + (f"[rank {rank}] " if rank != "0" else "")
                        + "%(name)s: %(message)s")
    level = logging.DEBUG if verbose else logging.INFO
    if rank != "0" and verbose < 2:  # one copy of every progress line: rank 0's (-vv: all)
        level = logging.WARNING
    logging.getLogger("pmx").setLevel(level)


if __name__ == "__main__":
    cli()
