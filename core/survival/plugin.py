"""Built-in plugin module registering pmx's survival heads (listed in BUILTIN_PLUGINS)."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def pmx_register_heads(register):  # type: ignore[no-untyped-def]
    from .heads import HEADS

    for head in HEADS:
        register(head)
