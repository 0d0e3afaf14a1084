"""Hook specifications of pmx plugins.

A plugin is a module (or object) with functions decorated by ``@pmx.hookimpl`` whose names
match the specs below. Each ``pmx_register_*`` hook receives a ``register`` callback and calls
it once per component, the way ``llm`` plugins register models, with the class or, so that
loading plugins does not import torch, with its import path and name::

    import pmx

    @pmx.hookimpl
    def pmx_register_tilers(register):
        register("my_plugin.tiler:MyTiler", name="my-tiler")   # imported on first use
        register(MyCheapTiler)                                  # a class already imported

Plugins are found through the ``pmx`` entry-point group (see docs/plugins.md); pmx's own
components register through these same hooks from built-in plugin modules.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("pmx")
hookimpl = pluggy.HookimplMarker("pmx")

#: ``register(cls)`` or ``register("module:Class", name="...")``
Register = Callable[..., None]


@hookspec
def pmx_register_tilers(register: Register) -> None:
    """Register tiler classes (kind ``tiler``).

    A tiler turns one slide into tile records (coordinates at a magnification or mpp, tissue
    score) and optionally pixels; subclass ``pmx.Component`` with ``kind = "tiler"``.
    """


@hookspec
def pmx_register_selectors(register: Register) -> None:
    """Register omics selector classes (kind ``selector``).

    A selector has sklearn-like ``fit(train omics, survival)`` / ``transform(omics)`` and is
    always fit on the training part of a fold only.
    """


@hookspec
def pmx_register_encoders(register: Register) -> None:
    """Register encoder classes (kind ``encoder``): frozen tile encoders and method backbones.

    Tile encoders declare their input size and normalisation and map image batches to vectors;
    backbones are the trainable networks a method's objectives and heads sit on.
    """


@hookspec
def pmx_register_objectives(register: Register) -> None:
    """Register pretext objective classes (kind ``objective``).

    An objective maps (batch, backbone outputs) to named losses and owns any decoder or head it
    needs; the trainer sums them with the method's weights and logs each term.
    """


@hookspec
def pmx_register_heads(register: Register) -> None:
    """Register survival head classes (kind ``head``).

    A head maps a representation to a risk score (higher = worse prognosis) and, where it can,
    a survival curve, and provides its own loss.
    """


@hookspec
def pmx_register_methods(register: Register) -> None:
    """Register method recipes (kind ``method``), run with ``pmx run plugin:NAME``.

    A method names its components, its training schedule and its presets (``tiny``, ``small``,
    ``paper``) and implements ``run(context)``.
    """


@hookspec
def pmx_register_commands(cli: Any) -> None:
    """Add click commands or groups to the ``pmx`` CLI (``cli`` is the root click group)."""
