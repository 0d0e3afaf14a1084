"""Fingerprints are cache keys: they must be stable across processes and sensitive to changes."""

from __future__ import annotations

import subprocess
import sys

import pmx
from pmx.components import fingerprint_of


class Tiler(pmx.Component):
    kind = "tiler"
    name = "fp-tiler"
    version = "1"

    class Config(pmx.ComponentConfig):
        tile_size: int = pmx.Field(256, description="tile edge")
        mpp: float = pmx.Field(0.5, description="microns per pixel")


def test_fingerprint_is_a_pure_function_of_kind_name_version_config():
    assert Tiler().fingerprint == Tiler(tile_size=256, mpp=0.5).fingerprint
    assert Tiler(tile_size=512).fingerprint != Tiler().fingerprint

    class Tiler2(Tiler):
        version = "2"

    assert Tiler2().fingerprint != Tiler().fingerprint
    assert len(Tiler().fingerprint) == 16


def test_fingerprint_ignores_key_order_and_is_pinned():
    assert fingerprint_of({"a": 1, "b": [1, 2]}) == fingerprint_of({"b": [1, 2], "a": 1})
    # Pinned: a change here silently invalidates every user's cache, so it must be deliberate.
    assert fingerprint_of({"a": 1, "b": [1, 2]}) == "8baa73198470c7bb"


def test_fingerprint_is_stable_across_processes():
    code = (
        "from pmx.components import fingerprint_of;"
        "print(fingerprint_of({'kind': 'tiler', 'config': {'x': 1.5, 'y': 'z'}}))"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2")
    }
    assert outputs == {fingerprint_of({"kind": "tiler", "config": {"x": 1.5, "y": "z"}})}
