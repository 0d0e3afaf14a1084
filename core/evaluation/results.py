"""The ``results.json`` of a run directory: its schema, writer, reader and Markdown table.

The schema is documented field by field in docs/results.md; bump ``SCHEMA_VERSION`` whenever a
field changes meaning. Fold-level numbers are kept exactly as computed; the summary is mean and
population standard deviation (numpy's default, as in the papers' tables) over folds.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import DataError

__all__ = [
    "SCHEMA_VERSION",
    "FoldResult",
    "Results",
    "mean_std",
    "build_results",
    "write_results",
    "load_results",
    "results_markdown",
    "versions",
]

SCHEMA_VERSION = 1


class FoldResult(BaseModel):
    """One test fold's numbers."""

    model_config = ConfigDict(extra="forbid")

    fold: int = Field(description="fold number, 0-based")
    c_index: float = Field(description="Harrell's C on the test part (scikit-survival)")
    n_train: int = Field(description="patients used for fitting")
    n_val: int = Field(description="patients in the inner validation split")
    n_test: int = Field(description="patients in the test fold")
    events_test: int = Field(description="events (deaths) in the test fold")
    metrics: dict[str, float | None] = Field(
        default_factory=dict, description="other metrics of this fold (uno_c, auc_mean, ibs, antolini_c, ...)"
    )


class Results(BaseModel):
    """Everything a run reports; written as results.json."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(SCHEMA_VERSION, description="version of this schema")
    method: str = Field(description="method name")
    cohort: str = Field(description="cohort name or path")
    preset: str = Field(description="preset the config was resolved from")
    run_id: str | None = Field(None, description="run identifier")
    created_at: str = Field(description="UTC time the file was written (ISO 8601)")
    split: str | None = Field(None, description="fingerprint of the folds (store table 'splits')")
    seed: int | None = Field(None, description="seed of the folds and training")
    folds: list[FoldResult] = Field(description="per-fold results")
    c_index_mean: float = Field(description="mean test C-index over folds")
    c_index_std: float = Field(description="population std of the test C-index over folds")
    metrics: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="name -> {mean, std} over folds for every other metric"
    )
    logrank_p: float | None = Field(description="log-rank p of the pooled per-fold median-risk split")
    n_high: int | None = Field(None, description="patients in the high-risk group")
    n_low: int | None = Field(None, description="patients in the low-risk group")
    config: dict[str, Any] = Field(description="resolved config of the run")
    versions: dict[str, str] = Field(description="versions of python, pmx and key libraries")
    files: dict[str, str] = Field(default_factory=dict, description="other outputs, relative to the run dir")
    reference: dict[str, float] = Field(
        default_factory=dict,
        description="known ceilings to read the C-index against (demo cohorts: oracle_c_index and the "
        "per-modality reachable C-index from truth.json); empty for real cohorts")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std (ddof=0) of finite values; NaN when none."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return float("nan"), float("nan")
    return float(data.mean()), float(data.std())


def versions() -> dict[str, str]:
    """Versions that change numbers: Python, pmx, torch, numpy, scikit-survival, lifelines."""
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("pmx", "torch", "numpy", "scikit-survival", "scikit-learn", "lifelines", "polars"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def build_results(
    *,
    method: str,
    cohort: str,
    preset: str,
    folds: Sequence[FoldResult | Mapping[str, Any]],
    config: Mapping[str, Any] | Any,
    logrank_p: float | None,
    run_id: str | None = None,
    split: str | None = None,
    seed: int | None = None,
    n_high: int | None = None,
    n_low: int | None = None,
    files: Mapping[str, str] | None = None,
    reference: Mapping[str, float] | None = None,
) -> Results:
    """Assemble a validated Results object; summaries are computed from the folds."""
    fold_results = [f if isinstance(f, FoldResult) else FoldResult(**dict(f)) for f in folds]
    if not fold_results:
        raise DataError("no fold results to report")
    mean, std = mean_std([f.c_index for f in fold_results])
    names = sorted({name for f in fold_results for name in f.metrics})
    summary = {}
    for name in names:
        m, s = mean_std([f.metrics.get(name) for f in fold_results])  # type: ignore[misc]
        summary[name] = {"mean": None if math.isnan(m) else m, "std": None if math.isnan(s) else s}
    if hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    return Results(
        method=method,
        cohort=str(cohort),
        preset=preset,
        run_id=run_id,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        split=split,
        seed=seed,
        folds=fold_results,
        c_index_mean=mean,
        c_index_std=std,
        metrics=summary,
        logrank_p=logrank_p,
        n_high=n_high,
        n_low=n_low,
        config=json.loads(json.dumps(dict(config), default=str)),
        versions=versions(),
        files=dict(files or {}),
        reference={k: float(v) for k, v in (reference or {}).items()},
    )


def write_results(run_dir: str | Path, results: Results) -> Path:
    """Write results.json (atomically: a reader never sees a half-written file)."""
    directory = Path(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results.model_dump(mode="json"), indent=2) + "\n")
    tmp.replace(path)
    return path


def load_results(path: str | Path) -> Results:
    """Read and validate a results.json (or the one inside a run directory)."""
    target = Path(path)
    if target.is_dir():
        target = target / "results.json"
    try:
        data = json.loads(target.read_text())
    except FileNotFoundError:
        raise DataError(f"{target} does not exist") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{target} is not valid JSON: {exc}") from None
    try:
        return Results.model_validate(data)
    except Exception as exc:
        raise DataError(f"{target} does not follow the results.json schema (docs/results.md): {exc}") from None


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def results_markdown(results: Results) -> str:
    """Per-fold table plus the mean +/- std row, the papers' way of reporting."""
    extra = sorted(results.metrics)
    head = ["fold", "C-index", *extra, "n train", "n val", "n test", "events test"]
    lines = [
        f"## {results.method} on {results.cohort} (preset {results.preset})",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for f in results.folds:
        cells = [str(f.fold), _fmt(f.c_index), *(_fmt(f.metrics.get(m)) for m in extra),
                 str(f.n_train), str(f.n_val), str(f.n_test), str(f.events_test)]
        lines.append("| " + " | ".join(cells) + " |")
    summary = [
        "mean ± std",
        f"{_fmt(results.c_index_mean)} ± {_fmt(results.c_index_std)}",
        *(f"{_fmt(results.metrics[m]['mean'])} ± {_fmt(results.metrics[m]['std'])}" for m in extra),
        "", "", "", "",
    ]
    lines.append("| " + " | ".join(summary) + " |")
    lines.append("")
    p = "-" if results.logrank_p is None else f"{results.logrank_p:.3g}"
    lines.append(
        f"C-index {_fmt(results.c_index_mean)} ± {_fmt(results.c_index_std)} over "
        f"{len(results.folds)} folds; log-rank p = {p} (per-fold median-risk split, pooled)."
    )
    if results.reference:
        ceilings = ", ".join(f"{name.removesuffix('_c_index')} {value:.3f}"
                             for name, value in sorted(results.reference.items()))
        lines.append("")
        lines.append(f"Reference C-index on this (synthetic) cohort, the most a model can reach: {ceilings}.")
    if results.files.get("km_plot"):  # relative to the run dir, like results.md itself
        lines.append("")
        lines.append(f"![Kaplan-Meier curves of the median-risk split]({results.files['km_plot']})")
    return "\n".join(lines) + "\n"
