"""Stage cache: cache hits, resume after a SIGKILL (real subprocess), concurrent writers, force."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _store_rows import (DIM, ENCODER, TILES_PER_SLIDE, patient_of, slide_coords, slide_ids,
                         slide_vectors)
from pmx.errors import DataError
from pmx.featurestore import open_store, stage_key

WRITER = Path(__file__).with_name("_store_writer.py")


def _writer(store: Path, n: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), str(store), str(n), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_exact_embeddings(store_dir: Path, n: int) -> None:
    """Exactly one copy of every expected vector, and every unit recorded done once."""
    store = open_store(store_dir)
    frame = store.read("embeddings", columns=["slide_id", "tiler", "level", "x", "y"])
    assert frame.height == n * TILES_PER_SLIDE
    assert frame.unique().height == frame.height  # no duplicated keys
    for slide in slide_ids(n):
        vectors, coords, _ = store.read_bag(ENCODER, slide_id=slide, with_coords=True)
        order = np.argsort(coords[:, 0])
        np.testing.assert_array_equal(vectors[order], slide_vectors(slide))
        np.testing.assert_array_equal(coords[order], slide_coords())
    assert store.count("patients") == len({patient_of(s) for s in slide_ids(n)})
    units = store.read("artifacts", where="unit != '*'", columns=["unit", "status"])
    assert sorted(units["unit"].to_list()) == slide_ids(n)
    assert set(units["status"].to_list()) == {"done"}
    summary = store.read("artifacts", where="unit = '*'").to_dicts()
    assert len(summary) == 1 and summary[0]["status"] == "done"
    assert summary[0]["rows"] == n * TILES_PER_SLIDE and summary[0]["units"] == n


def test_cache_hit_resume_and_force(tmp_path, caplog):
    store = open_store(tmp_path / "store")
    calls: list[str] = []

    def run(units, force=False, stop_after=None):
        with store.stage("select", fingerprint="sel1", params={"k": 10}, inputs=["raw"],
                         units=units, force=force) as stage:
            for fold in stage.pending():
                if fold == stop_after:
                    raise KeyboardInterrupt
                calls.append(fold)
                stage.done(fold, rows=fold + 1)
        return stage

    with caplog.at_level(logging.INFO, logger="pmx.store"):
        with pytest.raises(KeyboardInterrupt):
            run([0, 1, 2, 3], stop_after=2)
        assert calls == [0, 1]
        summary = store.read("artifacts", where="unit = '*'").to_dicts()[0]
        assert summary["status"] == "failed"
        stage = run([0, 1, 2, 3])  # resumes with the missing folds only
        assert calls == [0, 1, 2, 3] and stage.complete and stage.rows == 10
        assert "resuming, 2 of 4 unit(s) left" in caplog.text
        caplog.clear()
        stage = run([0, 1, 2, 3])
        assert stage.cached and calls == [0, 1, 2, 3]
        assert "cache hit" in caplog.text
        stage = run([0, 1, 2, 3], force=True)
        assert not stage.cached and calls[4:] == [0, 1, 2, 3]
    assert stage_key("select", "sel1", {"k": 10}, ["raw"]) == stage.key
    assert stage_key("select", "sel1", {"k": 11}, ["raw"]) != stage.key
    assert stage_key("select", "sel1", {"k": 10}, ["raw2"]) != stage.key
    done = store.read("artifacts", where=f"key = '{stage.key}' AND unit != '*'")
    assert done.height == 4 and done["inputs"].to_list()[0] == ["raw"]


def test_stage_rejects_duplicate_units_and_foreign_done(tmp_path):
    store = open_store(tmp_path / "store")
    with pytest.raises(DataError, match="duplicate unit"):
        store.stage("x", fingerprint="f", units=["a", "a"])
    with store.stage("x", fingerprint="f", units=["a"]) as stage:
        with pytest.raises(DataError, match="not one of its units"):
            stage.done("b")


def _done_units(store_dir: Path) -> list[str]:
    frame = open_store(store_dir).read("artifacts", where="unit != '*' AND status = 'done'")
    return sorted(frame["unit"].to_list())


def _kill(writer: subprocess.Popen, after_line: str, delay: float = 0.0) -> None:
    try:
        for line in writer.stdout:
            if line.startswith(after_line):
                break
        else:
            pytest.fail(f"writer ended before {after_line!r}: {writer.stderr.read()}")
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL


def test_writer_killed_mid_stage_then_rerun_is_exact(tmp_path):
    store_dir, n = tmp_path / "store", 8
    # 1) killed after S03's rows are committed but before the unit is recorded done
    _kill(_writer(store_dir, n, "--pause-after", "S03"), "written S03")
    assert _done_units(store_dir) == slide_ids(3)
    assert open_store(store_dir).count("embeddings") == 4 * TILES_PER_SLIDE
    # 2) resumed at S03, then killed at an arbitrary moment inside the following writes
    second = _writer(store_dir, n)
    first_line = second.stdout.readline()
    assert first_line.startswith("done S03"), first_line + second.stderr.read()
    _kill(second, "done S04", delay=0.03)
    left = len(slide_ids(n)) - len(_done_units(store_dir))
    assert left >= 1
    # 3) the rerun does only what is missing and leaves exactly the expected rows
    rerun = subprocess.run([sys.executable, str(WRITER), str(store_dir), str(n)],
                           capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    redone = [line.split()[1] for line in rerun.stdout.splitlines() if line.startswith("done ")]
    assert len(redone) == left and redone == slide_ids(n)[n - left:]
    assert f"resuming, {left} of {n} unit(s) left" in rerun.stderr
    _assert_exact_embeddings(store_dir, n)


def test_two_concurrent_writers_share_units_without_duplicates(tmp_path):
    """Both writers upsert the same patient keys at once, then split the stage's units."""
    store_dir, n = tmp_path / "store", 10
    ready = tmp_path / "ready"
    ready.mkdir()
    reports = [tmp_path / f"report{i}.txt" for i in range(2)]
    writers = [_writer(store_dir, n, "--ready", str(ready), "--peers", "2", "--sleep", "0.15",
                       "--report", str(report)) for report in reports]
    for writer in writers:
        _, err = writer.communicate(timeout=180)
        assert writer.returncode == 0, err
    done_by = [r.read_text().split() for r in reports]
    assert sorted(done_by[0] + done_by[1]) == slide_ids(n)  # each unit computed exactly once
    assert done_by[0] and done_by[1]  # and both processes did work
    _assert_exact_embeddings(store_dir, n)
    patients = open_store(store_dir).read("patients")
    assert patients["patient_id"].n_unique() == patients.height == n // 2


def test_units_written_in_process_are_exact(tmp_path):
    """The same stage body in-process: vectors come back bit-exact and float32."""
    store = open_store(tmp_path / "store")
    with store.stage("embed", fingerprint=ENCODER, units=slide_ids(2)) as stage:
        for slide in stage.pending():
            rows = store.write_embeddings(ENCODER, slide, slide_vectors(slide), coords=slide_coords(),
                                          patient_id=patient_of(slide))
            stage.done(slide, rows=rows)
    assert store.embedding_info(ENCODER) == (DIM, "float32")
    np.testing.assert_array_equal(store.read_bag(ENCODER, slide_id="S01"), slide_vectors("S01"))


def test_done_many_records_units_in_one_commit_and_resumes(tmp_path):
    store = open_store(tmp_path / "store")
    units = ["a", "b", "c", "d"]
    with store.stage("embed", fingerprint="fp", units=units) as stage:
        store.upsert("patients", [{"patient_id": "P", "time": 1.0, "event": True}])  # artifacts exist
        stage.done("a", rows=1)
        before = store.head("artifacts")
        stage.done_many({"b": 5, "c": 7})
        assert store.head("artifacts") == before + 1  # one commit for both units
        assert stage.is_done("b") and stage.is_done("c") and not stage.is_done("d")
        with pytest.raises(DataError, match="'zz' is not one of its units"):
            stage.done_many({"d": 1, "zz": 2})
        assert not stage.is_done("d")  # nothing of a refused call is recorded
    with store.stage("embed", fingerprint="fp", units=units) as again:
        assert list(again.pending()) == ["d"]  # a rerun resumes with only the missing unit
        assert again.rows == 1 + 5 + 7
    rows = store.read("artifacts", where="unit != '*'", columns=["unit", "rows"]).sort("unit")
    assert rows.to_dicts() == [{"unit": "a", "rows": 1}, {"unit": "b", "rows": 5},
                               {"unit": "c", "rows": 7}]
