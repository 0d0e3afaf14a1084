"""Kill-and-resume: a real training subprocess is SIGKILLed mid-epoch and restarted.

The resumed run must end with the same per-epoch metrics and bit-identical weights as an
uninterrupted run (fixed seed, CPU), which needs model, optimizer, schedule, every RNG
stream, the data order and the running epoch sums to come back exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pmx.training import read_metrics, read_weights

SCRIPT = Path(__file__).resolve().parent / "_resume_script.py"
STEPS = 16  # 4 epochs x 8 micro-batches / 2 accumulated
KILL_AT = 6  # mid-epoch 1


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(run_dir: Path, seconds: float, kind: str) -> dict:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(run_dir), str(seconds), kind],
                          capture_output=True, text=True, timeout=180, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _checkpoint_step(run_dir: Path) -> int:
    pointer = run_dir / "checkpoints" / "latest.json"
    try:
        return int(json.loads(pointer.read_text())["checkpoint"].split("-")[1])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return -1


def _without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time_s"} for row in rows]


@pytest.mark.parametrize("kind", ["regression", pytest.param("cox", marks=pytest.mark.slow)])
def test_killed_run_resumes_to_identical_result(tmp_path: Path, kind: str) -> None:
    reference = tmp_path / "uninterrupted"
    uninterrupted = subprocess.Popen([sys.executable, str(SCRIPT), str(reference), "0", kind],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    resumed = tmp_path / "resumed"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(resumed), "0.15", kind],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    deadline = time.monotonic() + 120
    while _checkpoint_step(resumed) < KILL_AT:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "training never reached the kill point"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = _checkpoint_step(resumed)
    assert KILL_AT <= killed_at < STEPS
    assert not (resumed / "result.json").exists()

    out, err = uninterrupted.communicate(timeout=180)
    assert uninterrupted.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1]) == {"start_step": 0, "end_step": STEPS}

    again = _run(resumed, 0.0, kind)
    assert again == {"start_step": killed_at, "end_step": STEPS}

    assert _without_time(read_metrics(resumed)) == _without_time(read_metrics(reference))
    expected = read_weights(reference / "model.safetensors")
    got = read_weights(resumed / "model.safetensors")
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_resume_refuses_a_changed_config(tmp_path: Path) -> None:
    """Continuing a run with other hyperparameters would silently mix two experiments."""
    sys.path.insert(0, str(SCRIPT.parent))
    from _train_tasks import RegressionTask, regression_data

    from pmx.errors import ConfigError
    from pmx.training import Trainer

    data = regression_data(n=16)
    config = dict(epochs=1, batch_size=8, progress=False)
    Trainer(RegressionTask(), config, run_dir=tmp_path, device="cpu").fit(data)
    with pytest.raises(ConfigError, match="lr"):
        Trainer(RegressionTask(), {**config, "lr": 0.5}, run_dir=tmp_path, device="cpu").fit(data)
    # the same config resumes (here: nothing left to do) without error
    result = Trainer(RegressionTask(), config, run_dir=tmp_path, device="cpu").fit(data)
    assert result.epochs_run == 1
