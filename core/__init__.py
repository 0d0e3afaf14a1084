"""pmx: multimodal (WSI + omics) cancer survival prediction, extensible by plugins.

Plugin authors need only this module::

    import pmx

    class MyHead(pmx.Component):
        kind = "head"
        name = "my-head"
        class Config(pmx.ComponentConfig):
            dim: int = pmx.Field(256, description="input width")

    @pmx.hookimpl
    def pmx_register_heads(register):
        register(MyHead)

Importing pmx is cheap: torch and the store are imported only by the parts that use them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .components import KINDS, Component, fingerprint_of
from .config import ComponentConfig, Field
from .errors import (
    ConfigError,
    DataError,
    DuplicateComponentError,
    PluginError,
    PmxError,
    UnknownComponentError,
)
from .hookspecs import hookimpl, hookspec
from .methods import Method, RunContext
from .plugins import get_host, get_registry, reset_host

__all__ = [
    "__version__",
    "KINDS",
    "Component",
    "ComponentConfig",
    "ConfigError",
    "DataError",
    "DuplicateComponentError",
    "Field",
    "Method",
    "PluginError",
    "PmxError",
    "RunContext",
    "UnknownComponentError",
    "fingerprint_of",
    "get_host",
    "get_registry",
    "hookimpl",
    "hookspec",
    "reset_host",
]
