"""Built-in plugin module registering pmx's omics selectors (listed in BUILTIN_PLUGINS)."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def pmx_register_selectors(register) -> None:  # type: ignore[no-untyped-def]
    from .deseq2_rsf import DESeq2RSFSelector
    from .gene_families import GeneFamiliesSelector
    from .quantile_normal import QuantileNormalSelector

    register(DESeq2RSFSelector)
    register(QuantileNormalSelector)
    register(GeneFamiliesSelector)
