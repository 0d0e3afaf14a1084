"""Scoring predictions: a table of (time, event, risk[, fold]) -> metrics, KM plot, reports.

Used in two ways:

* ``pmx evaluate PREDICTIONS``: score any model's predictions from a CSV/TSV/Parquet file
  (:func:`read_predictions`, :func:`evaluate_predictions`);
* at the end of a method run: :func:`report_run` turns the test-fold predictions and the split
  into results.json, results.md and km.png in the run directory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import DataError
from ..survival.checks import as_survival_arrays
from ..survival.metrics import (
    antolini_c,
    bootstrap_c_index,
    cumulative_dynamic_auc,
    harrell_c,
    integrated_brier,
    uno_c,
)
from .km import logrank_p, median_split, plot_km
from .results import FoldResult, Results, build_results, results_markdown, write_results

__all__ = ["read_predictions", "evaluate_predictions", "fold_metrics", "report_run", "evaluation_markdown"]

_ALIASES = {
    "time": ("time", "times", "duration", "os_time", "survival_time", "os.time", "days"),
    "event": ("event", "events", "status", "os", "os_event", "dead", "death", "os.event"),
    "risk": ("risk", "risk_score", "score", "hazard", "prediction"),
    "fold": ("fold",),
    "patient_id": ("patient_id", "patient", "case_id", "submitter_id", "id"),
}


def read_predictions(path: str | Path) -> Any:
    """Read a CSV/TSV/Parquet of predictions; columns are matched case-insensitively.

    Needs ``time``, ``event`` and ``risk`` (common aliases accepted, e.g. ``status``,
    ``duration``, ``score``); ``fold`` and ``patient_id`` are optional.
    """
    import polars as pl

    source = Path(path)
    if not source.exists():
        raise DataError(f"predictions file {source} does not exist")
    suffix = source.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            table = pl.read_parquet(source)
        elif suffix in (".csv", ".tsv", ".txt"):
            table = pl.read_csv(source, separator="\t" if suffix in (".tsv", ".txt") else ",",
                                infer_schema_length=10000, null_values=["", "NA", "NaN", "nan", "null"])
        else:
            raise DataError(f"{source}: unsupported file type {suffix!r}; use .csv, .tsv or .parquet")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"could not read predictions file {source}: {exc}") from None
    lower = {c.lower().strip(): c for c in table.columns}
    rename = {}
    for name, aliases in _ALIASES.items():
        found = next((lower[a] for a in aliases if a in lower), None)
        if found is not None:
            rename[found] = name
    missing = [n for n in ("time", "event", "risk") if n not in rename.values()]
    if missing:
        raise DataError(
            f"{source} has no {', '.join(missing)} column; it needs time, event (1 = death, "
            f"0 = censored) and risk (higher = worse); columns found: {', '.join(table.columns)}"
        )
    table = table.rename(rename).select([c for c in _ALIASES if c in rename.values()])
    if table.height == 0:
        raise DataError(f"{source} has no rows")
    return table


def _arrays(table: Any, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any] | None]:
    ids = table["patient_id"].cast(str).to_list() if "patient_id" in table.columns else None
    t, e, r = as_survival_arrays(
        table["time"].to_numpy(), table["event"].to_numpy(), table["risk"].to_numpy(),
        ids=ids, source=source,
    )
    return t, e, r, ids


def evaluate_predictions(
    table: Any,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    out_dir: str | Path | None = None,
    source: str = "predictions",
    title: str = "",
) -> dict[str, Any]:
    """Metrics of one predictions table; with ``out_dir`` also km.png and metrics.json.

    ``c_index`` is Harrell's C over all rows (exactly scikit-survival's
    ``concordance_index_censored``) with a bootstrap CI. With a ``fold`` column, each fold is
    also scored on its own and summarised as mean +/- std, and the KM split uses each fold's
    median. Uno's C and the time-dependent AUC estimate the censoring distribution from the
    same rows (no separate training set is given).
    """
    import polars as pl

    t, e, r, _ = _arrays(table, source)
    folds_col = table["fold"].to_numpy() if "fold" in table.columns else None
    result: dict[str, Any] = {"source": source, "n": int(len(t)), "events": int(e.sum())}
    boot = bootstrap_c_index(t, e, r, n_boot=n_boot, seed=seed, source=source)
    result.update(c_index=boot["c_index"], c_index_ci=[boot["lower"], boot["upper"]], n_boot=boot["n_boot"])

    if folds_col is not None:
        if pl.Series(folds_col).null_count():
            raise DataError(f"{source}: the fold column has empty values; give every row a fold")
        per_fold = []
        for fold in sorted(np.unique(folds_col).tolist()):
            members = folds_col == fold
            if not e[members].any():
                raise DataError(
                    f"{source}: fold {fold} has no event (all {int(members.sum())} patients censored), "
                    "so its C-index is undefined"
                )
            per_fold.append({
                "fold": fold, "n_test": int(members.sum()), "events_test": int(e[members].sum()),
                "c_index": harrell_c(t[members], e[members], r[members], source=f"{source}, fold {fold}"),
            })
        values = np.array([f["c_index"] for f in per_fold])
        result.update(folds=per_fold, c_index_mean=float(values.mean()), c_index_std=float(values.std()))

    for name, compute in (
        ("uno_c", lambda: uno_c(t, e, t, e, r, tau=float(np.quantile(t[e], 0.9)))),
        ("auc_mean", lambda: cumulative_dynamic_auc(t, e, t, e, r)[1]),
    ):
        try:
            result[name] = float(compute())
        except DataError as exc:
            result[name] = None
            result.setdefault("notes", []).append(f"{name}: {exc}")

    high = median_split(r, folds_col)
    try:
        p = logrank_p(t, e, high)
    except DataError as exc:
        p = None
        result.setdefault("notes", []).append(f"logrank_p: {exc}")
    result.update(logrank_p=p, n_high=int(high.sum()), n_low=int((~high).sum()))

    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if p is not None:
            result["km_plot"] = str(plot_km(t, e, high, out / "km.png", title=title, p_value=p))
        (out / "metrics.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
        (out / "report.md").write_text(evaluation_markdown(result))
        result["metrics_json"] = str(out / "metrics.json")
    return result


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def evaluation_markdown(result: Mapping[str, Any]) -> str:
    lines = [f"## Evaluation of {result.get('source', 'predictions')}", ""]
    if result.get("folds"):
        lines += ["| fold | C-index | n test | events test |", "|---|---|---|---|"]
        for f in result["folds"]:
            lines.append(f"| {f['fold']} | {_f(f['c_index'])} | {f['n_test']} | {f['events_test']} |")
        lines.append(f"| mean ± std | {_f(result['c_index_mean'])} ± {_f(result['c_index_std'])} | | |")
        lines.append("")
    lo, hi = result["c_index_ci"]
    p = result.get("logrank_p")
    lines += [
        f"- patients: {result['n']}, events: {result['events']}",
        f"- Harrell's C (all rows): {_f(result['c_index'])} (95% bootstrap CI {_f(lo)}-{_f(hi)})",
        f"- Uno's C: {_f(result.get('uno_c'))}; mean cumulative/dynamic AUC: {_f(result.get('auc_mean'))}",
        f"- log-rank p (median-risk split): {'-' if p is None else f'{p:.3g}'} "
        f"(high {result['n_high']}, low {result['n_low']})",
    ]
    if result.get("km_plot"):  # written next to report.md
        lines += ["", f"![Kaplan-Meier curves of the median-risk split]({Path(result['km_plot']).name})"]
    return "\n".join(lines) + "\n"


def fold_metrics(
    train_time: Any,
    train_event: Any,
    time: Any,
    event: Any,
    risk: Any,
    surv: Any | None = None,
    time_grid: Any | None = None,
    surv_index: Any | None = None,
) -> dict[str, float | None]:
    """Every metric of one test fold, for ``report_run(fold_metrics=...)``.

    Uno's C and AUC(t) estimate the censoring distribution on the fold's training part; heads
    that predict survival curves (``surv`` on ``time_grid``) add Antolini's C and the IBS.
    A metric that is undefined for this fold (e.g. too few events) is None, not an error.
    """
    out: dict[str, float | None] = {}
    candidates: dict[str, Any] = {
        "uno_c": lambda: uno_c(train_time, train_event, time, event, risk),
        "auc_mean": lambda: cumulative_dynamic_auc(train_time, train_event, time, event, risk)[1],
    }
    if surv is not None:
        candidates["antolini_c"] = lambda: antolini_c(time, event, surv, time_grid, surv_index)
        if time_grid is not None:
            candidates["ibs"] = lambda: integrated_brier(train_time, train_event, time, event, surv,
                                                         time_grid=time_grid)
    for name, compute in candidates.items():
        try:
            out[name] = float(compute())
        except DataError:
            out[name] = None
    return out


def _fold_sizes(splits: Any | None, fold_sizes: Mapping[int, Mapping[str, int]] | None) -> dict[int, dict[str, int]]:
    if splits is not None:
        import polars as pl

        counts = splits.group_by(["fold", "part"]).agg(pl.len().alias("n"))
        sizes: dict[int, dict[str, int]] = {}
        for row in counts.iter_rows(named=True):
            sizes.setdefault(int(row["fold"]), {})[f"n_{row['part']}"] = int(row["n"])
        return sizes
    if fold_sizes is not None:
        return {int(k): dict(v) for k, v in fold_sizes.items()}
    raise DataError("report_run needs the split (folds table) or fold_sizes to report n_train / n_val")


def report_run(
    run_dir: str | Path,
    *,
    method: str,
    cohort: str,
    preset: str,
    config: Any,
    predictions: Any,
    splits: Any | None = None,
    fold_sizes: Mapping[int, Mapping[str, int]] | None = None,
    fold_metrics: Mapping[int, Mapping[str, float | None]] | None = None,
    run_id: str | None = None,
    seed: int | None = None,
    reference: Mapping[str, float] | None = None,
) -> Results:
    """Write results.json, results.md and km.png of a cross-validated run.

    ``predictions`` holds one row per (fold, test patient) with ``fold``, ``time``, ``event``,
    ``risk`` (rows with a ``part`` other than ``test`` are ignored). ``splits`` is the folds
    table from :func:`pmx.evaluation.make_folds` (for n_train / n_val); ``fold_metrics`` adds
    per-fold metrics computed by the method (Uno's C with training-part IPCW, IBS, ...).
    """
    import polars as pl

    table = predictions if isinstance(predictions, pl.DataFrame) else pl.from_pandas(predictions)
    for column in ("fold", "time", "event", "risk"):
        if column not in table.columns:
            raise DataError(f"predictions have no {column!r} column; columns: {', '.join(table.columns)}")
    if "part" in table.columns:
        table = table.filter(pl.col("part") == "test")
    t, e, r, _ = _arrays(table, f"test predictions of {method}")
    folds = table["fold"].to_numpy()
    sizes = _fold_sizes(splits, fold_sizes)
    fold_results = []
    for fold in sorted(np.unique(folds).tolist()):
        members = folds == fold
        if not e[members].any():
            raise DataError(f"fold {fold} of {method}: the test part has no event (all censored); "
                            "the C-index is undefined. Re-make the folds stratified by event")
        size = sizes.get(int(fold), {})
        fold_results.append(FoldResult(
            fold=int(fold),
            c_index=harrell_c(t[members], e[members], r[members], source=f"fold {fold}"),
            n_train=int(size.get("n_train", 0)),
            n_val=int(size.get("n_val", 0)),
            n_test=int(members.sum()),
            events_test=int(e[members].sum()),
            metrics=dict((fold_metrics or {}).get(int(fold), {})),
        ))
    high = median_split(r, folds)
    directory = Path(run_dir)
    files: dict[str, str] = {"report": "results.md"}
    try:
        p: float | None = logrank_p(t, e, high)
        plot_km(t, e, high, directory / "km.png", title=f"{method} on {cohort}", p_value=p)
        files["km_plot"] = "km.png"
    except DataError:
        p = None
    split_ids = splits["split"].unique().to_list() if splits is not None and "split" in splits.columns else []
    results = build_results(
        method=method, cohort=str(cohort), preset=preset, folds=fold_results, config=config,
        logrank_p=p, run_id=run_id, split=split_ids[0] if len(split_ids) == 1 else None,
        seed=seed, n_high=int(high.sum()), n_low=int((~high).sum()), files=files, reference=reference,
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.md").write_text(results_markdown(results))
    write_results(directory, results)
    return results
