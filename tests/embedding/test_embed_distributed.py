"""Many processes and interruptions: 2 gloo ranks equal 1 process; a killed run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from embed_helpers import SLIDE_FILES, make_encoder, stored_vectors

from pmx.embedding import embed

SETTINGS = {"encoder.random_init": "true", "encoder.input_size": "32", "threads": "1",
            "num_workers": "0", "batch_size": "2"}


def _cli(store_dir, slide_dir, *extra: str, verbose: bool = False) -> list[str]:
    sets = [arg for key, value in SETTINGS.items() for arg in ("--set", f"{key}={value}")]
    return [sys.executable, "-m", "pmx.cli", *(["-vv"] if verbose else []), "embed", str(slide_dir), "--encoder", "resnet50-trunc",
            "--store", str(store_dir), "--device", "cpu", "--no-progress", *sets, *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PMX_LOAD_PLUGINS"] = ""  # built-in components only: faster start, no stray plugins
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture(scope="module")
def reference(tmp_path_factory, template_store, slide_dir):
    """Vectors of an uninterrupted single-process run with the same settings."""
    import shutil

    from pmx.featurestore import open_store

    target = tmp_path_factory.mktemp("reference") / "store"
    shutil.copytree(template_store, target, symlinks=True)
    store = open_store(target)
    config = {k: int(v) for k, v in SETTINGS.items() if not k.startswith("encoder.")}
    encoder = make_encoder()
    paths = {sid: (str(slide_dir / f"{sid}.svs"), None) for sid in SLIDE_FILES}
    summary = embed(store, encoder, config, slide_paths=paths, progress=False)
    assert summary.world == 1 and summary.computed == 3
    return encoder.fingerprint, stored_vectors(store, encoder.fingerprint)


def _assert_equal(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, vector in expected.items():
        np.testing.assert_array_equal(got[key], vector, err_msg=str(key))


def test_two_gloo_processes_equal_one(store, store_dir, slide_dir, reference):
    fingerprint, expected = reference
    # -vv: every rank logs (by default only rank 0 does), to see that both worked
    result = subprocess.run(_cli(store_dir, slide_dir, "--gpus", "2", "--json", verbose=True), env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["world"] == 2 and summary["fingerprint"] == fingerprint
    assert summary["computed"] == summary["committed"] == 3 and summary["tiles"] == 27
    assert "rank 1/2" in result.stderr and "rank 0/2" in result.stderr  # both ranks worked
    _assert_equal(stored_vectors(store, fingerprint), expected)
    assert store.count(f"embeddings__{fingerprint}") == 27
    done = store.read("artifacts", where="stage = 'embed' AND status = 'done' AND unit != '*'")
    assert sorted(done["unit"].to_list()) == sorted(SLIDE_FILES)
    assert not list((store_dir / "_staging").rglob("*.arrow"))  # fragments cleaned up


def test_killed_run_resumes_with_the_missing_slides(store, store_dir, slide_dir, reference):
    fingerprint, expected = reference
    process = subprocess.Popen(_cli(store_dir, slide_dir), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    staging = store_dir / "_staging"
    deadline = time.monotonic() + 240
    try:
        while not list(staging.rglob("*.arrow")):
            if process.poll() is not None:
                pytest.fail(f"embed exited before staging a slide: {process.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no slide was staged within 240 s")
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
        process.stderr.close()
    staged = len(list(staging.rglob("*.arrow")))
    assert 1 <= staged < 3
    assert fingerprint not in store.encoders() or store.count(f"embeddings__{fingerprint}") == 0

    config = {k: int(v) for k, v in SETTINGS.items() if not k.startswith("encoder.")}
    paths = {sid: (str(slide_dir / f"{sid}.svs"), None) for sid in SLIDE_FILES}
    summary = embed(store, make_encoder(), config, slide_paths=paths, progress=False)
    assert summary.computed == 3 - staged  # staged slides are published, not recomputed
    assert summary.committed == 3
    _assert_equal(stored_vectors(store, fingerprint), expected)
    assert store.count(f"embeddings__{fingerprint}") == 27
