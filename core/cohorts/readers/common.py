"""Helpers shared by the readers: reading delimited/Parquet tables and strict number parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from pmx.errors import DataError

__all__ = ["NonNumericError", "parse_floats", "read_lines", "read_table", "leading_comment_lines", "to_numeric_strict", "MISSING_TOKENS", "short_list"]

#: cell texts meaning "no value" in GDC, TCGA-CDR, cBioPortal and spreadsheet exports
MISSING_TOKENS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "'--", "--", "#N/A", "[Not Available]",
                  "[Not Applicable]", "[Unknown]", "[Not Evaluated]", "[Discrepancy]", "[Completed]",
                  "Not Reported", "not reported", "Unknown"]


class NonNumericError(DataError):
    """Cells that should hold numbers hold text (the validation report files it as non-numeric)."""


def short_list(items: Iterable[object], limit: int = 5) -> str:
    items = [str(i) for i in items]
    head = ", ".join(items[:limit])
    return head + (f" and {len(items) - limit} more" if len(items) > limit else "")


def leading_comment_lines(path: Path, prefix: str = "#") -> int:
    """Number of lines at the top of a text file that start with ``prefix``."""
    count = 0
    with _open_text(path) as handle:
        for line in handle:
            if not line.startswith(prefix):
                break
            count += 1
    return count


def _open_text(path: Path):
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _separator(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".txt", ".tab")):
        return "\t"
    with _open_text(path) as handle:  # unknown extension: sniff the header
        header = handle.readline()
    return "\t" if header.count("\t") >= header.count(",") else ","


def read_table(path: Path, *, comment: str | None = "#", header: int | None = 0) -> pd.DataFrame:
    """A CSV/TSV (optionally .gz) or Parquet file as strings (Parquet keeps its dtypes).

    Lines at the top starting with ``comment`` are skipped (cBioPortal and GDC metadata lines);
    missing-value tokens (``NA``, ``'--``, ``[Not Available]`` ...) become NaN.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; fix the path in the manifest")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path)
            if not isinstance(frame.index, pd.RangeIndex):  # IDs saved as the pandas index
                frame = frame.reset_index()
            frame.columns = [str(c) for c in frame.columns]
            return frame
        skip = leading_comment_lines(path, comment) if comment else 0
        return pd.read_csv(path, sep=_separator(path), dtype=str, skiprows=skip, header=header,
                           keep_default_na=False, na_values=MISSING_TOKENS, low_memory=False)
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow parse errors: name the file
        raise DataError(f"{path} cannot be read as a table: {exc}") from None


def to_numeric_strict(values: pd.Series | pd.DataFrame, where: str) -> pd.Series | pd.DataFrame:
    """Numbers, NaN for missing tokens; any other text raises an error naming the cells."""
    if isinstance(values, pd.Series):
        frame = values.to_frame()
    else:
        frame = values
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & frame.notna()
    if bad.to_numpy().any():
        rows, cols = np.nonzero(bad.to_numpy())
        examples = [f"{frame.index[r]!s}/{frame.columns[c]!s}={frame.iat[r, c]!r}" for r, c in zip(rows[:5], cols[:5])]
        raise NonNumericError(f"{where}: {bad.to_numpy().sum()} non-numeric value(s), e.g. {', '.join(examples)}; "
                        "fix or blank these cells (NA is read as missing)")
    numeric = numeric.astype(np.float64)
    if np.isinf(numeric.to_numpy()).any():
        raise NonNumericError(f"{where}: infinite values; replace them with numbers or NA")
    return numeric.iloc[:, 0] if isinstance(values, pd.Series) else numeric


_MISSING_SET = frozenset(MISSING_TOKENS)


def read_lines(path: Path) -> list[str]:
    """Lines of a text file (gzip allowed) without line ends; DataError naming the file if absent."""
    path = Path(path)
    try:
        with _open_text(path) as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc}") from None


def parse_floats(tokens: list[str], where: str, labels: list[str]) -> np.ndarray:
    """Strings to float64 with missing tokens as NaN; text that is not a number raises
    :class:`NonNumericError` naming the labels (features) of the offending cells."""
    try:
        values = np.asarray(tokens, dtype=np.float64)
    except ValueError:
        values = np.empty(len(tokens), dtype=np.float64)
        bad = []
        for i, token in enumerate(tokens):
            token = token.strip()
            if token in _MISSING_SET:
                values[i] = np.nan
                continue
            try:
                values[i] = float(token)
            except ValueError:
                bad.append(i)
        if bad:
            examples = ", ".join(f"{labels[i]}={tokens[i]!r}" for i in bad[:5])
            raise NonNumericError(f"{where}: {len(bad)} non-numeric value(s), e.g. {examples}; "
                                  "fix or blank these cells (NA is read as missing)") from None
    if np.isinf(values).any():
        raise NonNumericError(f"{where}: infinite values; replace them with numbers or NA")
    return values
