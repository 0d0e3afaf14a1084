"""Where each patient's and slide's rows lie in an embeddings table, for fast bag reads.

Why: a filtered query costs ~5-15 ms of planning, index lookup and row-id takes per bag and
decodes the vectors in 1,024-row batches that must then be concatenated; for MIL training, which
reads every bag every epoch, that is most of the read time. But the rows of one slide are
written together (one commit), so in the table's scan order a slide is one contiguous run of
rows, and so is a patient whose slides were written one after another. Knowing the runs (one
scan of the two key columns) turns a bag read into ``offset``/``limit`` scans of the vector
column, each decoded as a single batch that becomes a numpy array without a copy.

Offsets are positions in the scan order of one table *version* (deleted rows skipped), so an
index belongs to exactly one version and reads through it must pin that version.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Run = tuple[int, int]  # (first row, number of rows) in scan order

#: rows per batch while scanning the key columns (big batches: fewer round trips)
KEY_SCAN_BATCH = 1 << 20
#: a key whose rows are split into more runs than this is read with a filtered query instead
MAX_RUNS = 16


@dataclass
class BagIndex:
    """Runs of rows per patient and per slide in one version of one embeddings table."""

    version: int
    rows: int
    patients: dict[str, list[Run]] = field(default_factory=dict)
    slides: dict[str, list[Run]] = field(default_factory=dict)

    def runs(self, *, patient_id: str | None = None, slide_id: str | None = None) -> list[Run]:
        """The key's runs in scan order; empty when it has no rows at this version."""
        if patient_id is not None:
            return self.patients.get(patient_id, [])
        return self.slides.get(str(slide_id), [])

    def count(self, *, patient_id: str | None = None, slide_id: str | None = None) -> int:
        return sum(n for _, n in self.runs(patient_id=patient_id, slide_id=slide_id))


def build_index(handle: Any, version: int) -> BagIndex:
    """Scan the key columns of ``handle`` (pinned to ``version``) and record every key's runs."""
    data = (handle.search().select(["slide_id", "patient_id"]).limit(None)
            .to_batches(batch_size=KEY_SCAN_BATCH).read_all())
    return BagIndex(version, data.num_rows, _runs(data.column("patient_id")),
                    _runs(data.column("slide_id")))


def _runs(column: pa.ChunkedArray) -> dict[str, list[Run]]:
    """Run-length encode a key column into {value: [(start, length), ...]} (adjacent runs,
    e.g. across a fragment boundary, merged)."""
    out: dict[str, list[Run]] = {}
    base = 0
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        encoded = pc.run_end_encode(chunk)
        ends = encoded.run_ends.to_numpy().astype(np.int64) + base
        starts = np.concatenate([[base], ends[:-1]])
        for value, start, end in zip(encoded.values.to_pylist(), starts.tolist(), ends.tolist()):
            if value is None:
                continue
            runs = out.setdefault(value, [])
            if runs and runs[-1][0] + runs[-1][1] == start:
                runs[-1] = (runs[-1][0], runs[-1][1] + end - start)
            else:
                runs.append((start, end - start))
        base += len(chunk)
    return out


async def read_runs(table: Any, runs: Sequence[Run], columns: Sequence[str]) -> list[pa.RecordBatch]:
    """The rows of ``runs`` (in order) as record batches: one ``offset``/``limit`` scan per run
    on an async table (`aio`), all at once, each with a batch as large as the run so that a run
    within one fragment is a single batch."""

    async def one(start: int, length: int) -> list[pa.RecordBatch]:
        query = table.query().select(list(columns)).offset(int(start)).limit(int(length))
        reader = await query.to_batches(max_batch_length=max(int(length), 1))
        return [batch async for batch in reader if batch.num_rows]

    parts = await asyncio.gather(*(one(start, length) for start, length in runs))
    return [batch for part in parts for batch in part]


def vectors_of(batches: Sequence[pa.RecordBatch], column: str, vector_type: pa.DataType) -> np.ndarray:
    """The fixed-size-list ``column`` of ``batches`` as one writable (n, dim) numpy array.

    One batch becomes a view of Arrow's buffer (no copy; the array keeps the buffer alive);
    several are copied once into a fresh array.
    """
    width = vector_type.list_size
    dtype = np.dtype(vector_type.value_type.to_pandas_dtype())
    values = [_flat(b.column(column)) for b in batches]
    if not values:
        return np.empty((0, width), dtype)
    if len(values) == 1:
        return _writable_view(values[0], dtype).reshape(-1, width)
    out = np.empty((sum(len(v) for v in values) // width, width), dtype)
    flat, at = out.reshape(-1), 0
    for part in values:
        n = len(part)
        flat[at:at + n] = part.to_numpy(zero_copy_only=True)
        at += n
    return out


def _flat(array: pa.Array) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.flatten()  # respects the list array's offset


def _writable_view(values: pa.Array, dtype: np.dtype) -> np.ndarray:
    """A writable numpy view of a primitive Arrow array's values.

    The buffer was allocated for this query's result and nothing else refers to it, so handing
    it out writable is safe; it spares the copy that torch (which wants writable memory)
    would otherwise make of every bag.
    """
    if len(values) == 0 or values.null_count:
        return values.to_numpy(zero_copy_only=False).astype(dtype, copy=True)
    return np.asarray(_ArrowMemory(values, dtype))


class _ArrowMemory:
    """Exposes an Arrow array's value buffer through the numpy array interface; the numpy array
    keeps this object, and with it the Arrow buffer, alive."""

    def __init__(self, values: pa.Array, dtype: np.dtype):
        self._buffer = values.buffers()[1]
        address = self._buffer.address + values.offset * dtype.itemsize
        self.__array_interface__ = {"data": (address, False), "shape": (len(values),),
                                    "typestr": dtype.str, "version": 3}
