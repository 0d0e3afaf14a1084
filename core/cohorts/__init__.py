"""Cohorts: the synthetic demo cohort, the cohort manifest, readers of real (TCGA/GDC-style)
data, TCGA barcode linking, the validation report, and ingest into the feature store.

    from pmx.cohorts import generate_demo_cohort, load_cohort, ingest
    demo = generate_demo_cohort("demo")              # slides, omics, clinical, manifest, truth
    cohort = load_cohort(demo.manifest)              # in memory, with cohort.report
    ingest(demo.manifest, store="./.pmx/store")      # validated, then written (or nothing)

The manifest format and every reader are documented in docs/cohorts.md.
"""

from __future__ import annotations

from typing import Any

from .barcodes import parse_barcode, patient_of, pick_sample
from .manifest import ClinicalSource, Manifest, OmicsSource, SlideSource, load_manifest
from .validation import CohortValidationError, Finding, ValidationReport

_LAZY = {
    "generate_demo_cohort": "demo.generator",
    "DemoSettings": "demo.generator",
    "DemoCohort": "demo.generator",
    "load_cohort": "loader",
    "Cohort": "model",
    "OmicsData": "model",
    "ingest": "ingestion",
    "write_cohort": "ingestion",
    "IngestResult": "ingestion",
    "summarise": "info",
    "store_summary": "info",
}

__all__ = [
    "ClinicalSource", "CohortValidationError", "Finding", "Manifest", "OmicsSource", "SlideSource",
    "ValidationReport", "load_manifest", "parse_barcode", "patient_of", "pick_sample", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
