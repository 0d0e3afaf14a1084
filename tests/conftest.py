"""Shared fixtures: repository paths, the shared real test data, and a clean plugin host."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTDATA = REPO_ROOT.parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def testdata() -> Path:
    """../shared/testdata (real slides and a real GDC file); skips when it is absent."""
    if not TESTDATA.is_dir():
        pytest.skip(f"shared test data not found at {TESTDATA}")
    return TESTDATA


@pytest.fixture
def fresh_host(monkeypatch):
    """Reset the process-wide plugin host before and after a test that changes plugins."""
    import pmx

    pmx.reset_host()
    yield
    pmx.reset_host()
