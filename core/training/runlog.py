"""The run directory's records: resolved config, per-epoch JSONL metrics, optional TensorBoard.

Only rank 0 writes. ``metrics.jsonl`` holds one JSON object per finished epoch; on resume the
lines of epochs the checkpoint has not finished are dropped, so a killed-and-resumed run ends
with the same file as an uninterrupted one (apart from wall-clock fields).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping

from pmx.errors import ConfigError

from .checkpoint import write_json

log = logging.getLogger("pmx.training")

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
#: config keys that may change between a run and its resumption
RESUME_TOLERANT = {"progress", "tensorboard", "num_workers"}


class RunLog:
    def __init__(self, run_dir: Path, *, enabled: bool, tensorboard: bool = False):
        self.run_dir = run_dir
        self.enabled = enabled
        self._writer = None
        if enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._writer = SummaryWriter(str(run_dir / "tensorboard"))
                except ImportError:
                    log.warning("tensorboard=true but the tensorboard package is not installed; "
                                "pip install tensorboard (metrics.jsonl is still written)")

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS_FILE

    def save_config(self, config: Mapping[str, Any], *, resuming: bool) -> None:
        """Write the resolved config; when resuming, refuse a run started with another one."""
        if not self.enabled:
            return
        path = self.run_dir / CONFIG_FILE
        if resuming and path.is_file():
            before = json.loads(path.read_text())
            now = json.loads(json.dumps(config, default=str))
            changed = _changed_keys(before, now)
            if changed:
                raise ConfigError(
                    f"run directory {self.run_dir} was started with a different config "
                    f"(changed: {', '.join(changed)}); resume with the same config, or use a "
                    "new output directory / --force to start over"
                )
        write_json(path, dict(config))

    def truncate(self, epochs_done: int) -> None:
        """Keep only the lines of epochs before ``epochs_done`` (resume)."""
        if not self.enabled or not self.metrics_path.is_file():
            return
        kept = [line for line in self.metrics_path.read_text().splitlines()
                if line.strip() and json.loads(line).get("epoch", -1) < epochs_done]
        self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def append(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in record.items()}
        with self.metrics_path.open("a") as handle:
            handle.write(json.dumps(clean, sort_keys=True) + "\n")
            handle.flush()
        if self._writer is not None:
            step = int(record.get("step", record.get("epoch", 0)))
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run directory."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _changed_keys(before: Any, now: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(now, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(now)):
            if key in RESUME_TOLERANT:
                continue
            out += _changed_keys(before.get(key), now.get(key), f"{prefix}{key}.")
        return out
    return [] if before == now else [prefix.rstrip(".")]
