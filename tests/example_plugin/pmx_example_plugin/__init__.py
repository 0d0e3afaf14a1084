"""An example pmx plugin: a centre-crop tiler and a method recipe that uses it.

Everything a plugin needs is here: components subclass ``pmx.Component`` (or ``pmx.Method``),
declare ``kind``/``name``/``version`` and a typed ``Config``, and are registered from
``@pmx.hookimpl`` functions. The package exposes this module in the ``pmx`` entry-point group
(see pyproject.toml), and ``pmx plugins`` lists it once it is pip-installed.
"""

from __future__ import annotations

import json
from typing import Literal

import pmx


class CenterTiler(pmx.Component):
    """One square tile at the centre of the slide (a toy tiler for docs and tests)."""

    kind = "tiler"
    name = "example-center"
    version = "1"

    class Config(pmx.ComponentConfig):
        size: int = pmx.Field(256, gt=0, description="tile edge in pixels at level 0")
        image_format: Literal["jpeg", "png"] = pmx.Field("jpeg", description="pixel encoding")

    def tile(self, width: int, height: int) -> list[dict[str, int]]:
        size = min(self.config.size, width, height)
        return [{"x": (width - size) // 2, "y": (height - size) // 2, "size": size}]


class TrainSection(pmx.ComponentConfig):
    epochs: int = pmx.Field(2, ge=1, description="passes over the training fold")
    lr: float = pmx.Field(1e-3, gt=0, description="learning rate")


class ExampleMethod(pmx.Method):
    """A method recipe that only writes its resolved config (shows presets and overrides)."""

    name = "example-method"
    version = "1"

    class Config(pmx.ComponentConfig):
        tiler: str = pmx.Field("example-center", description="registered tiler to use")
        train: TrainSection = pmx.Field(default_factory=TrainSection, description="training schedule")

    presets = {
        "tiny": {"train": {"epochs": 1}},
        "small": {"train": {"epochs": 5}},
        "paper": {"train": {"epochs": 30, "lr": 5e-4}},
    }

    def run(self, context: pmx.RunContext) -> dict:
        context.out_dir.mkdir(parents=True, exist_ok=True)
        result = {"method": self.name, "preset": context.preset, "config": self.config.model_dump()}
        (context.out_dir / "example-result.json").write_text(json.dumps(result))
        return result

    def dry_run(self, context: pmx.RunContext) -> dict:
        return {"parameters": 0, "tiler": self.config.tiler}


@pmx.hookimpl
def pmx_register_tilers(register):
    register(CenterTiler)


@pmx.hookimpl
def pmx_register_methods(register):
    register(ExampleMethod)
