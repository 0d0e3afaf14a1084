"""ContraMAE plugin tests: torch single-threaded (tiny models; the test machine is shared), and a
small demo cohort generated once per session for the end-to-end run tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread_torch():
    """Tiny models are dominated by thread hand-off on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory):
    """40 patients, 512 px slides, some modalities missing: the run tests' cohort (a few seconds)."""
    from contramae_testutils import SMALL_COHORT

    from pmx.cohorts import generate_demo_cohort

    return generate_demo_cohort(tmp_path_factory.mktemp("contramae-cohort"), SMALL_COHORT, progress=False)
