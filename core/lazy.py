"""Lazy package exports: a package's public names are imported from their submodules on first use.

Every ``pmx`` command loads the plugin host, which imports the small plugin modules inside
``pmx.tiling`` and ``pmx.omics``; a package ``__init__`` that imported its submodules eagerly
would make each command pay for numpy, pandas, pyarrow, OpenSlide and scipy before doing
anything. With :func:`lazy_exports` (PEP 562 module ``__getattr__`` / ``__dir__``) the package
lists its names and where they live, and ``from pmx.tiling import GridTiler`` imports
``pmx.tiling.grid`` only then::

    _EXPORTS = {"GridTiler": "grid", "run_tiling": "runner"}
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    ``exports`` maps each public name to the submodule (relative to ``package``) defining it.
    A name is imported on first use and then stored in the package's namespace, so later
    look-ups are plain attribute reads; an unknown name raises ``AttributeError`` as usual.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
