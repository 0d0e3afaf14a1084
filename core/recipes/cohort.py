"""Which cohort a run uses: ``--cohort DIR`` or the generated demo cohort (``--demo``).

Every method shares one :class:`DemoSection` default, so ``pmx run plugin:cmta --demo`` and
``pmx run plugin:contramae --demo`` land on the same demo folder, the same ingested rows and the
same folds.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pmx.config import ComponentConfig, Field
from pmx.errors import ConfigError, DataError

log = logging.getLogger("pmx.run")


class DemoSection(ComponentConfig):
    patients: int = Field(150, ge=10, description="--demo: patients of the generated demo cohort")
    slide_size: int = Field(1024, ge=256, description="--demo: level-0 slide width in pixels (20x)")
    genes: int = Field(500, ge=100, description="--demo: RNA genes")
    mirnas: int = Field(100, ge=100, description="--demo: miRNAs")
    cpgs: int = Field(100, ge=100, description="--demo: methylation probes")


def demo_folder(out_dir: str | Path, demo: DemoSection, seed: int) -> Path:
    """Where ``--demo`` keeps its cohort, keyed by every demo setting, so reruns and other
    methods with the same settings reuse it."""
    tag = f"p{demo.patients}-s{demo.slide_size}-g{demo.genes}-m{demo.mirnas}-c{demo.cpgs}-seed{seed}"
    return Path(out_dir) / "demo-cohorts" / tag


def resolve_manifest(context: Any, demo: DemoSection, *, method: str) -> Path:
    """The cohort manifest of this run: ``--cohort`` (a folder or a manifest file) or the demo
    cohort, generated on first use."""
    if context.demo and context.cohort is not None:
        raise ConfigError("give either --demo or --cohort DIR, not both")
    if context.demo:
        from pmx.cohorts import DemoSettings, generate_demo_cohort

        root = demo_folder(context.out_dir, demo, context.seed)
        if not (root / "manifest.toml").exists():
            log.info("generating the demo cohort in %s (%d patients)", root, demo.patients)
            settings = DemoSettings(patients=demo.patients, seed=context.seed, slide_size=demo.slide_size,
                                    genes=demo.genes, mirnas=demo.mirnas, cpgs=demo.cpgs)
            generate_demo_cohort(root, settings, progress=False)
        else:
            log.info("demo cohort: reusing %s", root)
        return root / "manifest.toml"
    if context.cohort is None:
        raise ConfigError(f"pmx run plugin:{method} needs a cohort: --cohort DIR (a folder with "
                          "manifest.toml, see docs/cohorts.md) or --demo")
    path = Path(context.cohort)
    manifest = path / "manifest.toml" if path.is_dir() else path
    if not manifest.is_file():
        raise DataError(f"cohort {path}: no manifest.toml there; write one (docs/cohorts.md) or "
                        "generate a demo cohort with `pmx demo-data DIR`")
    return manifest


def demo_reference(manifest: Path) -> dict[str, float]:
    """The demo cohort's ceilings (truth.json: oracle and per-modality reachable C-index), to
    report next to a run's C-index; empty for a real cohort."""
    truth = Path(manifest).parent / "truth.json"
    if not truth.is_file():
        return {}
    try:
        c_index = json.loads(truth.read_text()).get("c_index", {})
    except (OSError, ValueError):
        return {}
    return {f"{name}_c_index": float(value) for name, value in c_index.items()
            if isinstance(value, (int, float))}
