"""The two survival groups that the differential-expression design contrasts.

DESeq2 needs a categorical design, survival is a censored time. The rule (training patients
only, so the contrast never sees a test patient):

* median = median follow-up time of the training patients that have this omics type;
* **high risk**: death observed at or before the median (``event and time <= median``);
* **low risk**: follow-up beyond the median, dead or alive (``time > median``);
* everyone else (censored at or before the median: outcome unknown at the median) is left out
  of the differential-expression step, but still used by the random survival forest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["SurvivalGroups", "survival_groups"]


@dataclass(frozen=True)
class SurvivalGroups:
    """Training patients of each group and the median that separated them."""

    median: float
    high: list[str]
    low: list[str]
    excluded: list[str]

    def labels(self) -> pd.Series:
        """'high' / 'low' per patient of the two groups (the DESeq2 ``condition`` column)."""
        return pd.Series(["high"] * len(self.high) + ["low"] * len(self.low),
                         index=self.high + self.low, name="condition")


def survival_groups(kind: str, survival: pd.DataFrame, min_group_size: int = 3) -> SurvivalGroups:
    """Split training patients by the rule above; too few in either group is a DataError."""
    events = int(survival["event"].sum())
    if events < min_group_size:
        raise DataError(
            f"omics '{kind}': this training fold has {events} observed death(s) among "
            f"{len(survival)} patients; the high/low-risk design needs at least {min_group_size}. "
            "Use fewer folds, a larger cohort, or a selector that does not need events "
            "(e.g. quantile-normal)"
        )
    time = survival["time"].to_numpy(dtype=np.float64)
    event = survival["event"].to_numpy(dtype=bool)
    median = float(np.median(time))
    high_mask = event & (time <= median)
    low_mask = time > median
    ids = survival.index.astype(str)
    groups = SurvivalGroups(
        median=median,
        high=ids[high_mask].tolist(),
        low=ids[low_mask].tolist(),
        excluded=ids[~(high_mask | low_mask)].tolist(),
    )
    for name, members in (("high-risk (death by the median time)", groups.high),
                          ("low-risk (followed beyond the median time)", groups.low)):
        if len(members) < min_group_size:
            raise DataError(
                f"omics '{kind}': the {name} group of this training fold has {len(members)} "
                f"patient(s) (median training time {median:g}); the DESeq2 design needs at least "
                f"{min_group_size} per group. Use fewer folds or a larger cohort, or lower "
                "min_group_size"
            )
    return groups
