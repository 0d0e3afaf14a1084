"""Per-slide pixel-size overrides from a CSV/TSV file (for slides whose metadata is missing or
wrong). Columns: ``mpp`` plus ``slide_id`` and/or ``path``; the manifest's own ``mpp`` column
does the same job for ingested cohorts."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ..errors import DataError


def load_mpp_overrides(path: str | os.PathLike[str]) -> dict[str, float]:
    """{slide_id or resolved path: mpp}; errors name the file and the row."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"mpp override file {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    first = text.splitlines()[0] if text.strip() else ""
    dialect = "excel-tab" if "\t" in first else "excel"
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    columns = {c.strip().lower(): c for c in (reader.fieldnames or [])}
    if "mpp" not in columns or not ({"slide_id", "path"} & set(columns)):
        raise DataError(
            f"mpp override file {path} needs a `mpp` column and a `slide_id` or `path` column "
            f"(found: {', '.join(reader.fieldnames or []) or 'no header'})"
        )
    overrides: dict[str, float] = {}
    for line, row in enumerate(reader, start=2):
        raw = (row.get(columns["mpp"]) or "").strip()
        try:
            mpp = float(raw)
        except ValueError:
            mpp = float("nan")
        if not math.isfinite(mpp) or mpp <= 0:
            raise DataError(f"mpp override file {path}, line {line}: mpp {raw!r} is not a "
                            "positive number")
        for key in ("slide_id", "path"):
            value = (row.get(columns[key]) or "").strip() if key in columns else ""
            if value:
                overrides[str(Path(value).resolve()) if key == "path" else value] = mpp
    return overrides


def lookup_mpp(overrides: dict[str, float], slide_id: str, path: str | os.PathLike[str]
               ) -> float | None:
    """The override for a slide, by id first, then by resolved path."""
    if slide_id in overrides:
        return overrides[slide_id]
    return overrides.get(str(Path(path).resolve()))
