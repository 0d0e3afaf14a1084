"""The synthetic demo cohort (``pmx demo-data``): slides and omics with planted survival signal."""

from .generator import DemoCohort, DemoSettings, demo_truth, generate_demo_cohort

__all__ = ["DemoCohort", "DemoSettings", "demo_truth", "generate_demo_cohort"]
