"""Method recipes: the unit users run with ``pmx run plugin:NAME``.

A method is a component whose config is a set of sections (data, model, pretrain, finetune,
eval, ...) each a ``ComponentConfig``. Presets are nested overrides on top of the config's
defaults: ``tiny`` (CPU demo and tests, minutes), ``small`` and ``paper`` (the published
hyperparameters). Resolution order: defaults < preset < ``--config FILE.toml`` < ``--set``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping

from .components import Component
from .config import build_config, deep_merge, load_config_file, parse_set_option
from .errors import ConfigError

PRESETS: tuple[str, ...] = ("tiny", "small", "paper")
DEFAULT_STORE = "./.pmx/store"


def default_store() -> str:
    """``PMX_STORE`` if set, else ``./.pmx/store`` (an embedded LanceDB directory)."""
    return os.environ.get("PMX_STORE", DEFAULT_STORE)


@dataclass
class RunContext:
    """Where and how a method runs; built by the CLI (or by tests) and passed to ``run``."""

    method: str
    preset: str
    store: str = field(default_factory=default_store)
    out_dir: Path = Path("runs")
    cohort: Path | None = None
    seed: int = 0
    device: str = "auto"
    gpus: int = 0
    force: bool = False
    demo: bool = False
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("pmx"))

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


class Method(Component):
    """Base class of method recipes (kind ``method``)."""

    kind: ClassVar[str] = "method"
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    default_preset: ClassVar[str] = "tiny"
    #: whether ``run()`` trains as one of several torchrun processes (``pmx run --gpus N``);
    #: a method that does not is refused ``--gpus N`` instead of running N copies of itself
    distributed: ClassVar[bool] = False

    @classmethod
    def preset_names(cls) -> list[str]:
        return sorted(set(PRESETS) | set(cls.presets))

    @classmethod
    def resolve_config(
        cls,
        preset: str | None = None,
        config_file: str | Path | None = None,
        sets: Iterable[str] = (),
        overrides: Mapping[str, Any] | None = None,
    ) -> Any:
        preset = preset or cls.default_preset
        if preset not in cls.preset_names():
            raise ConfigError(
                f"method {cls.name!r} has no preset {preset!r}; presets: {', '.join(cls.preset_names())}"
            )
        values: dict[str, Any] = deep_merge({}, cls.presets.get(preset, {}))
        if config_file is not None:
            values = deep_merge(values, load_config_file(config_file))
        if overrides:
            values = deep_merge(values, overrides)
        for option in sets:
            values = deep_merge(values, parse_set_option(option))
        return build_config(cls.Config, values, owner=f"method '{cls.name}' (preset {preset})")

    def run(self, context: RunContext) -> Any:
        """Run the whole recipe (ingest -> ... -> report) and return its results."""
        raise NotImplementedError(f"method {self.name!r} does not implement run()")

    def dry_run(self, context: RunContext) -> dict[str, Any]:
        """What ``--dry-run`` prints: models and parameter counts, without touching data."""
        return {}
