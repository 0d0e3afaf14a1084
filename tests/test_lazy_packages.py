"""Packages that export their names lazily (module ``__getattr__``) must still export all of them.

A typo in a lazy export table only shows when that name is first used; this test uses them all.
"""

from __future__ import annotations

import importlib

import pytest

LAZY_PACKAGES = ["pmx.tiling", "pmx.omics", "pmx.survival", "pmx.evaluation"]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_lazy_name_resolves_to_its_module_object(package: str) -> None:
    module = importlib.import_module(package)
    exports = module._EXPORTS
    assert sorted(module.__all__) == sorted(exports)
    for name, submodule in exports.items():
        value = getattr(module, name)
        assert value is getattr(importlib.import_module(f"{package}.{submodule}"), name), name
    assert set(module.__all__) <= set(dir(module))
    namespace: dict = {}
    exec(f"from {package} import *", namespace)
    assert set(module.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(module, "no_such_name")


def test_tiling_keeps_its_public_names() -> None:
    import pmx.tiling

    assert {"GridTiler", "RegionTiler", "HsvScoredTiler", "RepresentativeRegionTiler", "run_tiling",
            "SlideRef", "StoreSink", "load_tiles", "RECORD_SCHEMA"} <= set(pmx.tiling.__all__)
    assert len(pmx.tiling.__all__) == 34
