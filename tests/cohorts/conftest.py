"""Fixtures of the cohort tests: small demo cohorts (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmx.cohorts.demo import DemoSettings, generate_demo_cohort

#: a small but complete demo: every modality, a few duplicates/normals, tiny slides
SMALL = DemoSettings(patients=40, seed=3, slide_size=512, genes=300, mirnas=120, cpgs=300, workers=1)


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    return generate_demo_cohort(tmp_path_factory.mktemp("demo-small"), SMALL, progress=False)


@pytest.fixture(scope="session")
def demo_150(tmp_path_factory):
    """The default number of patients and the default signal, with small slides and fewer
    (unplanted) features so it is quick to generate and read."""
    settings = DemoSettings(slide_size=512, genes=500, mirnas=150, cpgs=500, workers=1)
    return generate_demo_cohort(tmp_path_factory.mktemp("demo-150"), settings, progress=False)


@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"
