"""Built-in plugin module registering pmx's survival heads (listed in BUILTIN_PLUGINS).

By import path: ``pmx.survival.heads`` imports torch, which only using a head should pay for.
"""

from __future__ import annotations

from ..hookspecs import hookimpl

#: head name -> import path of its class (the same set as ``pmx.survival.heads.HEADS``)
BUILTIN_HEADS: dict[str, str] = {
    "cox": "pmx.survival.heads:CoxHead",
    "cox-cosine": "pmx.survival.heads:CosineCoxHead",
    "discrete-time": "pmx.survival.heads:DiscreteTimeHead",
    "logistic-hazard": "pmx.survival.heads:LogisticHazardHead",
}


@hookimpl
def pmx_register_heads(register):  # type: ignore[no-untyped-def]
    for name, target in BUILTIN_HEADS.items():
        register(target, name=name)
