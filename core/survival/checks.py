"""Validation of survival arrays shared by metrics, bins, splits and ``pmx evaluate``.

Everything downstream (sksurv calls, bins, folds) assumes positive finite times, 0/1 events and
equal lengths; checking once here lets those functions fail with a message that says which
sample is wrong and how to fix it instead of a numpy/sksurv traceback.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import DataError

__all__ = ["as_survival_arrays", "check_events", "check_times", "check_risk", "sample_label", "structured_y"]


def sample_label(index: int, ids: Sequence[Any] | None) -> str:
    """'patient TCGA-..' when ids are known, else 'row N' (0-based)."""
    if ids is not None:
        return f"patient {ids[index]!s} (row {index})"
    return f"row {index}"


def _to_numpy(values: Any, what: str) -> np.ndarray:
    try:
        import torch

        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(f"{what} must be a 1-D array (one value per patient); got shape {array.shape}")
    return array


def _finite_floats(values: Any, what: str, ids: Sequence[Any] | None, kind: str, fix: str) -> np.ndarray:
    """A 1-D float64 array with every value finite; the error names the first bad patient and the fix."""
    raw = _to_numpy(values, what)
    try:
        out = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be numeric; got values like {raw[:3].tolist()}") from None
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise DataError(f"{what} has {bad.size} {kind} value(s), first at {sample_label(int(bad[0]), ids)}; {fix}")
    return out


def check_times(time: Any, ids: Sequence[Any] | None = None, source: str = "") -> np.ndarray:
    """Finite, strictly positive float times."""
    where = f" in {source}" if source else ""
    times = _finite_floats(time, f"time{where}", ids, "missing/NaN/infinite",
                           "drop those patients or fill their follow-up time")
    bad = np.flatnonzero(times <= 0)
    if bad.size:
        raise DataError(
            f"time{where} must be > 0; {bad.size} value(s) are zero or negative, first "
            f"{times[bad[0]]!r} at {sample_label(int(bad[0]), ids)}. Survival times are "
            "follow-up durations (e.g. days to death or last contact), not dates"
        )
    return times


def check_events(event: Any, ids: Sequence[Any] | None = None, source: str = "") -> np.ndarray:
    """Events as bool: 1/True = death (event observed), 0/False = censored."""
    where = f" in {source}" if source else ""
    raw = _to_numpy(event, f"event{where}")
    if raw.dtype == bool:
        return raw.copy()
    try:
        values = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"event{where} must be 0/1 (1 = event observed, 0 = censored); got values like "
            f"{raw[:3].tolist()}"
        ) from None
    bad = np.flatnonzero(~np.isin(values, (0.0, 1.0)))
    if bad.size:
        raise DataError(
            f"event{where} must be 0 or 1 (1 = event observed, 0 = censored); "
            f"{bad.size} value(s) are not, first {raw[bad[0]]!r} at {sample_label(int(bad[0]), ids)}"
        )
    return values.astype(bool)


def check_risk(risk: Any, ids: Sequence[Any] | None = None, source: str = "") -> np.ndarray:
    where = f" in {source}" if source else ""
    values = _finite_floats(risk, f"risk{where}", ids, "NaN/infinite", "the model produced invalid scores")
    return values


def as_survival_arrays(
    time: Any,
    event: Any,
    risk: Any | None = None,
    ids: Sequence[Any] | None = None,
    source: str = "",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and convert (time, event[, risk]) to float64 / bool / float64 arrays."""
    times = check_times(time, ids, source)
    events = check_events(event, ids, source)
    lengths = {"time": len(times), "event": len(events)}
    risks = None
    if risk is not None:
        risks = check_risk(risk, ids, source)
        lengths["risk"] = len(risks)
    if ids is not None:
        lengths["ids"] = len(ids)
    if len(set(lengths.values())) != 1:
        where = f" in {source}" if source else ""
        sizes = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise DataError(f"mismatched lengths{where}: {sizes}; give one value per patient")
    if len(times) == 0:
        raise DataError(f"no samples{' in ' + source if source else ''}: survival arrays are empty")
    return times, events, risks


def structured_y(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """scikit-survival's structured outcome array (fields ``event``, ``time``)."""
    y = np.empty(len(time), dtype=[("event", bool), ("time", np.float64)])
    y["event"] = event
    y["time"] = time
    return y
