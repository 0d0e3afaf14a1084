"""Turning what callers have (arrow, polars, pandas, dicts, numpy) into rows of a table schema.

Writes are checked here, before anything touches the store: an unknown column, a missing key,
a null key or a value that cannot be cast is a `DataError` naming the table and column, so bad
input never reaches (or corrupts) stored data.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pmx.errors import DataError

Rows = Any  # pa.Table | pa.RecordBatch | polars.DataFrame | pandas.DataFrame | list[dict] | dict


def vectors_to_arrow(vectors: Any, dtype: pa.DataType | None = None) -> pa.FixedSizeListArray:
    """(n, d) numpy array or torch tensor -> fixed-size list array without copying per row."""
    if hasattr(vectors, "detach"):  # torch tensor
        vectors = vectors.detach().cpu().numpy()
    array = np.asarray(vectors)
    if array.ndim != 2:
        raise DataError(f"vectors must be a 2-d array (n, dim); got shape {array.shape}")
    if dtype is not None:
        array = array.astype(dtype.to_pandas_dtype(), copy=False)
    flat = pa.array(np.ascontiguousarray(array).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, array.shape[1])


def to_arrow(rows: Rows) -> pa.Table:
    """Any supported row container -> pyarrow Table (no schema applied yet)."""
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pa.RecordBatch):
        return pa.Table.from_batches([rows])
    module = type(rows).__module__.split(".")[0]
    if module == "polars":
        return rows.to_arrow()
    if module == "pandas":
        return pa.Table.from_pandas(rows, preserve_index=False)
    if isinstance(rows, Mapping):
        columns = {}
        for name, values in rows.items():
            if isinstance(values, np.ndarray) and values.ndim == 2:
                columns[name] = vectors_to_arrow(values)
            elif hasattr(values, "detach") and getattr(values, "ndim", 1) == 2:
                columns[name] = vectors_to_arrow(values)
            else:
                columns[name] = values
        return pa.table(columns)
    if isinstance(rows, Sequence):
        items = list(rows)
        if items and not isinstance(items[0], Mapping):
            raise DataError("rows must be mappings (dicts) of column -> value")
        normal = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in items]
        return pa.Table.from_pylist(normal)
    raise DataError(f"cannot write rows of type {type(rows).__name__}; use a pyarrow Table, "
                    "a polars or pandas DataFrame, a dict of columns or a list of dicts")


def conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """Reorder, fill and cast ``table`` to ``schema``; reject what does not fit, naming it."""
    names = set(table.column_names)
    unknown = sorted(names - set(schema.names))
    if unknown:
        raise DataError(f"{where}: unknown column(s) {', '.join(unknown)}; "
                        f"columns are: {', '.join(schema.names)}")
    columns = []
    for field in schema:
        if field.name not in names:
            if not field.nullable:
                raise DataError(f"{where}: required column {field.name!r} is missing")
            columns.append(pa.nulls(table.num_rows, type=field.type))
            continue
        column = table.column(field.name)
        if column.type != field.type:
            column = _cast(column, field, where)
        if not field.nullable and column.null_count:
            raise DataError(f"{where}: column {field.name!r} has {column.null_count} null value(s); "
                            "it is required")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _cast(column: pa.ChunkedArray, field: pa.Field, where: str) -> pa.ChunkedArray:
    target = field.type
    try:
        if pa.types.is_fixed_size_list(target):
            return _to_fixed_size(column, target, where, field.name)
        if pa.types.is_null(column.type):
            return pa.nulls(len(column), type=target)
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise DataError(f"{where}: column {field.name!r} of type {column.type} cannot be stored as "
                        f"{target}: {exc}") from None


def _to_fixed_size(column: pa.ChunkedArray, target: pa.FixedSizeListType, where: str,
                   name: str) -> pa.ChunkedArray:
    chunks = []
    for chunk in column.chunks:
        if pa.types.is_fixed_size_list(chunk.type):
            if chunk.type.list_size != target.list_size:
                raise DataError(f"{where}: column {name!r} has width {chunk.type.list_size}, "
                                f"the table stores width {target.list_size}")
            values = chunk.flatten()
        elif pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type):
            lengths = pc.list_value_length(chunk)
            if len(chunk) and (pc.min(lengths).as_py() != target.list_size
                               or pc.max(lengths).as_py() != target.list_size):
                raise DataError(f"{where}: column {name!r} has vectors of length "
                                f"{pc.min(lengths).as_py()}..{pc.max(lengths).as_py()}, "
                                f"the table stores width {target.list_size}")
            values = chunk.flatten()
        else:
            raise DataError(f"{where}: column {name!r} must hold vectors, got {chunk.type}")
        values = _cast_values(values, target.value_type)
        chunks.append(pa.FixedSizeListArray.from_arrays(values, target.list_size))
    return pa.chunked_array(chunks, type=target)


def _cast_values(values: pa.Array, value_type: pa.DataType) -> pa.Array:
    if values.type == value_type:
        return values
    try:
        return values.cast(value_type)
    except pa.ArrowNotImplementedError:  # e.g. double -> half on older arrow
        numpy = values.to_numpy(zero_copy_only=False).astype(value_type.to_pandas_dtype())
        return pa.array(numpy)


def vector_dtype_of(table: pa.Table, column: str = "vector") -> tuple[int, str]:
    """(width, 'float16'|'float32') of the vectors the caller passes (for new encoder tables)."""
    dtype = table.schema.field(column).type
    if pa.types.is_fixed_size_list(dtype):
        width = dtype.list_size
    elif pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        if table.num_rows == 0:
            raise DataError("cannot infer the embedding width from zero rows")
        first = table.column(column).chunk(0)
        width = len(first[0].values) if first[0].is_valid else 0
    else:
        raise DataError(f"column {column!r} must hold vectors, got {dtype}")
    value_type = dtype.value_type
    return width, ("float16" if value_type == pa.float16() else "float32")


def dedupe_keys(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Keep the last row of each key (a batch with repeated keys must not store both)."""
    if table.num_rows < 2:
        return table
    index = pa.array(np.arange(table.num_rows))
    keyed = table.select(list(keys)).append_column("__row", index)
    last = keyed.group_by(list(keys), use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == table.num_rows:
        return table
    rows = np.sort(last.column("__row_max").to_numpy())
    return table.take(pa.array(rows))
