"""Built-in plugin module registering pmx's omics selectors (listed in BUILTIN_PLUGINS).

By import path: the selectors import scikit-learn, scikit-survival and PyDESeq2, which only
using a selector should pay for.
"""

from __future__ import annotations

from ..hookspecs import hookimpl

#: selector name -> import path of its class
BUILTIN_SELECTORS: dict[str, str] = {
    "deseq2-rsf": "pmx.omics.deseq2_rsf:DESeq2RSFSelector",
    "quantile-normal": "pmx.omics.quantile_normal:QuantileNormalSelector",
    "gene-families": "pmx.omics.gene_families:GeneFamiliesSelector",
}


@hookimpl
def pmx_register_selectors(register) -> None:  # type: ignore[no-untyped-def]
    for name, target in BUILTIN_SELECTORS.items():
        register(target, name=name)
