"""The feature store: a LanceDB database of the tables in `schemas`, with keyed writes.

A store is a local directory by default (embedded, nothing to run) or any URI Lance supports
(``s3://...``, ``gs://...``). Every write is keyed: rows merge on the table's key columns, so
running a stage twice never duplicates rows. For a local store, writers of one table are
serialised across processes with a file lock (see `locks`), which makes concurrent stages safe.

The store object only holds a URI until first use and pickles as that URI, so it can be passed
to ``spawn`` DataLoader workers (Lance itself is not fork-safe: each process opens its own).
"""

from __future__ import annotations

import logging
import os
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

os.environ.setdefault("LANCE_LOG", "error")  # Lance logs a WARN line for every new table

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pmx.errors import DataError

from . import schemas
from .convert import Rows, conform, dedupe_keys, to_arrow, vector_dtype_of
from .locks import LockDir
from .schemas import EMBEDDINGS, EMBEDDINGS_PREFIX, TableSpec

log = logging.getLogger("pmx.store")

LOCK_DIR = "_locks"
MAINTAIN_EVERY = 32  # commits to a table between index/compaction upkeep (see _maintain)
COMPACT_MAX_ROWS = 200_000  # tables up to this size are compacted; bigger ones only reindexed
META_TABLE = "_meta"
KEEP_VERSIONS = timedelta(days=36500)  # automatic upkeep never prunes lineage; `gc` does


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser()


def sql_literal(value: Any) -> str:
    """A Python value as a Lance SQL literal (strings quoted, quotes doubled)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return "'" + str(value).replace("'", "''") + "'"


def sql_in(column: str, values: Iterable[Any]) -> str:
    """``column IN (...)`` (or ``column = v`` for one value) for a filter string."""
    items = sorted({v for v in values}, key=str)
    if not items:
        return "false"
    if len(items) == 1:
        return f"{column} = {sql_literal(items[0])}"
    return f"{column} IN ({', '.join(sql_literal(v) for v in items)})"


def sql_and(*clauses: str | None) -> str | None:
    parts = [f"({c})" for c in clauses if c]
    return " AND ".join(parts) if parts else None


class FeatureStore:
    """Handle on one store. Cheap to create; connects on first use; pickles as its URI."""

    def __init__(self, uri: str | os.PathLike[str], *, consistent: bool = True,
                 storage_options: dict[str, str] | None = None):
        self.uri = str(uri)
        self.consistent = consistent
        self.storage_options = storage_options
        self.local_dir = _local_path(self.uri) if _is_local(self.uri) else None
        self.locks = LockDir(self.local_dir / LOCK_DIR if self.local_dir else None)
        self._db: Any = None
        self._tables: dict[str, Any] = {}
        self._indexed: set[str] = set()
        self._dirty: set[str] = set()
        self._commits: dict[str, int] = {}
        self._schemas: dict[str, pa.Schema] = {}

    # -- connection and pickling ------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri, "consistent": self.consistent,
                "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["uri"], consistent=state["consistent"],
                      storage_options=state["storage_options"])

    def __repr__(self) -> str:
        return f"FeatureStore({self.uri!r})"

    @property
    def db(self) -> Any:
        if self._db is None:
            import lancedb

            if self.local_dir is not None:
                self.local_dir.mkdir(parents=True, exist_ok=True)
            self._db = lancedb.connect(
                self.uri,
                read_consistency_interval=timedelta(0) if self.consistent else None,
                storage_options=self.storage_options,
            )
            self._check_schema_version()
        return self._db

    def _check_schema_version(self) -> None:
        names = self._physical_names()
        if META_TABLE not in names:
            if names:  # created before the version table existed: adopt it
                log.debug("store %s has no %s table; recording schema version", self.uri, META_TABLE)
            try:
                self._db.create_table(META_TABLE, pa.table({
                    "key": ["schema_version"], "value": [str(schemas.SCHEMA_VERSION)]}))
            except (ValueError, OSError, RuntimeError):
                pass  # another process created it first
            return
        meta = self._db.open_table(META_TABLE).to_arrow().to_pylist()
        version = int({r["key"]: r["value"] for r in meta}.get("schema_version", "1"))
        if version > schemas.SCHEMA_VERSION:
            raise DataError(
                f"store {self.uri} was written with store schema version {version}, newer than "
                f"this pmx ({schemas.SCHEMA_VERSION}); upgrade pmx to read it"
            )

    # -- table handles ----------------------------------------------------------------------
    def _physical_names(self) -> list[str]:
        db = self._db if self._db is not None else self.db
        names: list[str] = []
        token = None
        while True:
            response = db.list_tables(page_token=token)
            names.extend(response.tables)
            token = response.page_token
            if not token:
                return sorted(names)

    def table_names(self) -> list[str]:
        """Physical tables that exist (embeddings appear once per encoder)."""
        return [n for n in self._physical_names() if not n.startswith("_")]

    def encoders(self) -> list[str]:
        """Encoder fingerprints that have an embeddings table."""
        return [n[len(EMBEDDINGS_PREFIX):] for n in self.table_names() if n.startswith(EMBEDDINGS_PREFIX)]

    def has_table(self, name: str) -> bool:
        if name == EMBEDDINGS:
            return bool(self.encoders())
        return name in self._physical_names()

    def _open(self, physical: str) -> Any | None:
        table = self._tables.get(physical)
        if table is not None:
            return table
        if physical not in self._physical_names():
            return None
        table = self.db.open_table(physical)
        self._tables[physical] = table
        return table

    def _create(self, spec: TableSpec) -> Any:
        try:
            table = self.db.create_table(spec.name, schema=spec.with_version())
        except (ValueError, OSError, RuntimeError) as exc:  # created concurrently
            if spec.name not in self._physical_names():
                raise DataError(f"cannot create table {spec.name!r} in {self.uri}: {exc}") from exc
            table = self.db.open_table(spec.name)
        self._tables[spec.name] = table
        return table

    def table(self, name: str) -> Any:
        """The LanceDB table behind a physical table name (for advanced queries)."""
        table = self._open(name)
        if table is None:
            raise DataError(f"store {self.uri} has no table {name!r} yet; "
                            f"tables: {', '.join(self.table_names()) or '(none)'}")
        return table

    def table_at(self, physical: str, version: int | None) -> Any:
        """A table pinned to ``version`` (readers pin the snapshot they were built on)."""
        if version is None:
            return self.table(physical)
        cache_key = f"{physical}@{version}"
        table = self._tables.get(cache_key)
        if table is None:
            table = self.db.open_table(physical, version=version)
            self._tables[cache_key] = table
        return table

    def versions(self, tables: Iterable[str]) -> dict[str, int]:
        """Current version of each existing physical table (for pinning a reader's snapshot)."""
        return {t: self._open(t).version for t in tables if self._open(t) is not None}

    def stored_schema(self, physical: str) -> pa.Schema:
        """Schema of an existing table (cached: a table's schema never changes in place)."""
        schema = self._schemas.get(physical)
        if schema is None:
            schema = self._schemas[physical] = self.table(physical).schema
        return schema

    def spec(self, physical: str) -> TableSpec:
        """Spec of a physical table (embeddings tables read their width from the stored schema)."""
        if physical.startswith(EMBEDDINGS_PREFIX):
            dim, dtype = schemas.vector_info(self.stored_schema(physical))
            return schemas.embeddings_spec(physical[len(EMBEDDINGS_PREFIX):], dim, dtype)
        return schemas.spec_for(physical)

    # -- writes -----------------------------------------------------------------------------
    def upsert(self, table: str, rows: Rows) -> int:
        """Insert or update ``rows`` by the table's key columns; returns the rows written.

        A rerun with the same keys updates in place instead of duplicating. Rows for units
        (slides) that have no rows yet are appended directly, which is as fast as a plain add.
        """
        data = to_arrow(rows)
        if data.num_rows == 0:
            return 0
        written = 0
        for spec, part in self._route(table, data):
            written += self._write(spec, part, mode="upsert")
        return written

    def replace(self, table: str, rows: Rows, where: str, *, unique_keys: bool = False) -> int:
        """Make the rows matching ``where`` exactly ``rows`` (a unit rewritten from scratch).

        ``unique_keys=True`` promises the rows' keys are distinct (skips the duplicate check).
        """
        data = to_arrow(rows)
        written = 0
        routed = list(self._route(table, data)) if data.num_rows else []
        if not routed and table != EMBEDDINGS:
            self.delete(table, where)
            return 0
        for spec, part in routed:
            written += self._write(spec, part, mode="replace", where=where, unique=unique_keys)
        return written

    def append(self, table: str, rows: Rows) -> int:
        """Add rows without looking for existing keys: only for rows the caller knows are new
        (a stage recording a unit it holds the lock of). Everything else should `upsert`."""
        data = to_arrow(rows)
        written = 0
        for spec, part in self._route(table, data) if data.num_rows else ():
            written += self._write(spec, part, mode="append")
        return written

    def delete(self, table: str, where: str) -> None:
        """Delete the rows matching ``where`` (in every encoder's table for ``embeddings``)."""
        for physical in self._physicals(table):
            handle = self._open(physical)
            if handle is None:
                continue
            with self.locks.hold("table", physical):
                handle.delete(where)

    def write_embeddings(self, encoder: str, slide_id: str, vectors: Any, *,
                         coords: Any = None, patient_id: str | None = None, tiler: str = "none",
                         level: int = 0, dtype: str | None = None) -> int:
        """Store one slide's bag of vectors (n, dim) with optional (n, 2) level-0 coordinates.

        Without coordinates (e.g. a CLAM ``.pt`` bag) rows are keyed by their position:
        ``x`` = row number, ``y`` = -1, ``level`` = -1.
        """
        from .convert import vectors_to_arrow

        if hasattr(vectors, "detach"):
            vectors = vectors.detach().cpu().numpy()
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise DataError(f"slide {slide_id}: vectors must be (n, dim), got shape {vectors.shape}")
        n = vectors.shape[0]
        if dtype is None:
            dtype = "float16" if vectors.dtype == np.float16 else "float32"
        physical = schemas.embeddings_table_name(encoder)
        if self._open(physical) is not None:
            dtype = schemas.vector_info(self.stored_schema(physical))[1]
        value_type = schemas.VECTOR_DTYPES[dtype]
        if coords is None:
            xs, ys, levels = np.arange(n, dtype=np.int64), np.full(n, -1, np.int64), -1
        else:
            coords = np.asarray(coords)
            if coords.shape != (n, 2):
                raise DataError(f"slide {slide_id}: coords must be ({n}, 2), got {coords.shape}")
            xs, ys = coords[:, 0].astype(np.int64), coords[:, 1].astype(np.int64)
            levels = level
            pairs = np.unique(np.stack([xs, ys], axis=1), axis=0) if n > 1 else coords
            if len(pairs) != n:
                raise DataError(f"slide {slide_id}: {n - len(pairs)} repeated (x, y) coordinate(s); "
                                "each tile of a bag needs its own position")
        data = pa.table({
            "encoder": pa.array([encoder] * n, pa.string()),
            "tiler": pa.array([tiler] * n, pa.string()),
            "slide_id": pa.array([slide_id] * n, pa.string()),
            "patient_id": pa.array([patient_id] * n, pa.string()),
            "level": pa.array(np.full(n, levels, np.int32)),
            "x": pa.array(xs),
            "y": pa.array(ys),
            "vector": vectors_to_arrow(vectors, value_type),
        })
        where = sql_and(f"slide_id = {sql_literal(slide_id)}", f"tiler = {sql_literal(tiler)}")
        return self.replace(EMBEDDINGS, data, where, unique_keys=True)

    def _route(self, table: str, data: pa.Table) -> Iterator[tuple[TableSpec, pa.Table]]:
        """Yield (physical spec, rows) pairs: embeddings rows go to their encoder's table."""
        if table.startswith(EMBEDDINGS_PREFIX):
            encoder = table[len(EMBEDDINGS_PREFIX):]
            if "encoder" not in data.column_names:
                data = data.append_column("encoder", pa.array([encoder] * data.num_rows, pa.string()))
            table = EMBEDDINGS
        if table != EMBEDDINGS:
            yield schemas.spec_for(table), data
            return
        if "encoder" not in data.column_names or "vector" not in data.column_names:
            raise DataError("embeddings rows need an 'encoder' (fingerprint) and a 'vector' column")
        encoders = pc.unique(data.column("encoder")).to_pylist()
        for encoder in encoders:
            if encoder is None:
                raise DataError("embeddings rows have a null 'encoder'")
            part = data if len(encoders) == 1 else data.filter(pc.equal(data.column("encoder"), encoder))
            physical = schemas.embeddings_table_name(encoder)
            if self._open(physical) is not None:
                dim, dtype = schemas.vector_info(self.stored_schema(physical))
            else:
                dim, dtype = vector_dtype_of(part)
            yield schemas.embeddings_spec(encoder, dim, dtype), part

    def _physicals(self, table: str) -> list[str]:
        if table == EMBEDDINGS:
            return [EMBEDDINGS_PREFIX + e for e in self.encoders()]
        if not table.startswith(EMBEDDINGS_PREFIX):
            schemas.spec_for(table)
        return [table]

    def _write(self, spec: TableSpec, data: pa.Table, mode: str, where: str | None = None,
               unique: bool = False) -> int:
        data = conform(data, spec.schema, where=f"table {spec.name}")
        if not unique:  # the caller has not already checked the keys are unique
            data = dedupe_keys(data, spec.keys)
        with self.locks.hold("table", spec.name):
            handle = self._open(spec.name)
            if handle is None:  # (not `or`: a table's truth value is a row count)
                handle = self._create(spec)
            if mode == "replace":
                assert where is not None
                if handle.count_rows(where):
                    handle.delete(where)
                handle.add(data)
            elif mode == "append" or self._is_new(handle, spec, data):
                handle.add(data)
            else:
                (handle.merge_insert(list(spec.keys)).when_matched_update_all()
                 .when_not_matched_insert_all().execute(data))
            self._ensure_indices(handle, spec)
            self._maintain(handle, spec)
        self._dirty.add(spec.name)
        return data.num_rows

    def _maintain(self, handle: Any, spec: TableSpec) -> None:
        """Keep keyed writes fast as commits pile up (call with the table lock held).

        Every commit adds a fragment the indices do not cover, and key lookups scan those: after
        200 appends a lookup costs ~10x an indexed one. So after ``MAINTAIN_EVERY`` commits of
        this process, a small table is compacted (which also folds new rows into its indices);
        a big one (or a bulk one: tiles, embeddings, omics, too costly to rewrite) gets the
        BTree of its unit column
        rebuilt once the unindexed rows reach a quarter of the indexed ones, so rebuilds cost
        O(1) per written row however large the table grows. Other indices are brought up to
        date when a stage completes (`refresh_touched`).
        """
        commits = self._commits.get(spec.name, 0) + 1
        self._commits[spec.name] = commits
        if commits < MAINTAIN_EVERY:
            return
        self._commits[spec.name] = 0
        indices = list(handle.list_indices()) if spec.indexed else []
        if indices:
            rows = (indices[0].num_indexed_rows or 0) + (indices[0].num_unindexed_rows or 0)
        else:
            rows = handle.count_rows()
        if rows <= COMPACT_MAX_ROWS and not spec.bulk:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                handle.optimize(cleanup_older_than=KEEP_VERSIONS)  # versions: only gc drops them
            return
        from lancedb.index import BTree

        column = spec.partition or spec.indexed[0]
        for index in indices:
            if index.columns == [column]:
                if (index.num_unindexed_rows or 0) * 4 >= (index.num_indexed_rows or 0):
                    handle.create_index(column, config=BTree(), replace=True)
                return

    def _is_new(self, handle: Any, spec: TableSpec, data: pa.Table) -> bool:
        """True when no stored row can share a key with ``data`` (so a plain append is keyed)."""
        if handle.count_rows() == 0:
            return True
        if spec.partition is None:
            return False
        clauses = [sql_in(spec.partition, pc.unique(data.column(spec.partition)).to_pylist())]
        for key in spec.keys:
            if key != spec.partition and pa.types.is_string(data.schema.field(key).type):
                values = pc.unique(data.column(key)).to_pylist()
                if len(values) == 1:
                    clauses.append(f"{key} = {sql_literal(values[0])}")
        return handle.count_rows(sql_and(*clauses)) == 0

    # -- indices ----------------------------------------------------------------------------
    def _ensure_indices(self, handle: Any, spec: TableSpec) -> None:
        if spec.name in self._indexed or not spec.indexed:
            return
        from lancedb.index import BTree

        present = {tuple(ix.columns) for ix in handle.list_indices()}
        for column in spec.indexed:
            if (column,) not in present:
                try:
                    handle.create_index(column, config=BTree(), replace=False)
                except (ValueError, RuntimeError, OSError) as exc:
                    if "already exists" not in str(exc):
                        raise
        self._indexed.add(spec.name)

    def refresh_indices(self, table: str | None = None) -> list[str]:
        """Rebuild indices that miss rows appended since they were built; returns tables touched.

        Appended rows are still found by queries (Lance scans the unindexed part), but a bag
        query is only index-fast once they are indexed. A BTree rebuild reads only the key
        column, so this is cheap next to compaction (`optimize`).
        """
        from lancedb.index import BTree

        touched = []
        names = self._physicals(table) if table else self.table_names()
        for physical in names:
            handle = self._open(physical)
            if handle is None or not self.spec(physical).indexed:
                continue
            with self.locks.hold("table", physical):
                self._indexed.discard(physical)
                self._ensure_indices(handle, self.spec(physical))
                stale = [ix for ix in handle.list_indices() if ix.num_unindexed_rows]
                for ix in stale:
                    handle.create_index(ix.columns[0], config=BTree(), replace=True)
                if stale:
                    touched.append(physical)
        return touched

    def refresh_touched(self) -> list[str]:
        """`refresh_indices` for the tables this handle wrote to (called when a stage completes)."""
        touched = []
        for physical in sorted(self._dirty):
            touched += self.refresh_indices(physical)
        self._dirty.clear()
        return touched

    # -- reads ------------------------------------------------------------------------------
    def read_arrow(self, table: str, where: str | None = None,
                   columns: Sequence[str] | None = None, limit: int | None = None) -> pa.Table:
        """Rows of ``table`` matching ``where`` (Lance SQL) as a pyarrow Table."""
        parts = []
        physicals = self._physicals(table)
        for physical in physicals:
            handle = self._open(physical)
            if handle is None:
                continue
            query = handle.search()
            if where:
                query = query.where(where)
            if columns:
                names = self.stored_schema(physical).names
                missing = [c for c in columns if c not in names]
                if missing:
                    raise DataError(f"table {physical} has no column(s) {', '.join(missing)}; "
                                    f"columns: {', '.join(names)}")
                query = query.select(list(columns))
            parts.append(query.limit(limit).to_arrow())
        if not parts:
            schema = self._empty_schema(table, columns)
            return schema.empty_table()
        if len(parts) == 1:
            return parts[0]
        return pa.concat_tables(parts, promote_options="permissive")

    def read(self, table: str, where: str | None = None, columns: Sequence[str] | None = None,
             limit: int | None = None) -> Any:
        """Rows of ``table`` matching ``where`` as a polars DataFrame (empty if no table yet)."""
        import polars as pl

        return pl.from_arrow(self.read_arrow(table, where, columns, limit))

    def _empty_schema(self, table: str, columns: Sequence[str] | None) -> pa.Schema:
        if table == EMBEDDINGS or table.startswith(EMBEDDINGS_PREFIX):
            schema = schemas.embeddings_schema(1, "float32")
        else:
            schema = schemas.spec_for(table).schema
        if columns:
            schema = pa.schema([schema.field(c) for c in columns if c in schema.names])
        return schema

    def count(self, table: str, where: str | None = None) -> int:
        total = 0
        for physical in self._physicals(table):
            handle = self._open(physical)
            if handle is not None:
                total += handle.count_rows(where) if where else handle.count_rows()
        return total

    def embedding_info(self, encoder: str) -> tuple[int, str]:
        """(width, dtype) of an encoder's vectors."""
        return schemas.vector_info(self.stored_schema(schemas.embeddings_table_name(encoder)))

    def read_bag(self, encoder: str, *, patient_id: str | None = None,
                 slide_id: str | None = None, with_coords: bool = False,
                 version: int | None = None) -> Any:
        """All vectors of one patient (or slide) as an (n, dim) numpy array, via the index.

        With ``with_coords`` returns ``(vectors, coords, slide_ids)``.
        """
        if (patient_id is None) == (slide_id is None):
            raise ValueError("give exactly one of patient_id or slide_id")
        handle = self.table_at(schemas.embeddings_table_name(encoder), version)
        where = (f"patient_id = {sql_literal(patient_id)}" if patient_id is not None
                 else f"slide_id = {sql_literal(slide_id)}")
        columns = ["vector", "slide_id", "x", "y"] if with_coords else ["vector"]
        data = handle.search().where(where).select(columns).limit(None).to_arrow()
        physical = schemas.embeddings_table_name(encoder)
        vectors = fixed_list_to_numpy(data.column("vector"),
                                      self.stored_schema(physical).field("vector").type)
        if not with_coords:
            return vectors
        coords = np.stack([data.column("x").to_numpy(), data.column("y").to_numpy()], axis=1)
        return vectors, coords, data.column("slide_id").to_numpy(zero_copy_only=False)

    # -- stage cache ------------------------------------------------------------------------
    def stage(self, name: str, *, fingerprint: str, params: Any = None,
              inputs: Sequence[str] = (), units: Iterable[Any] | None = None,
              force: bool = False, logger: logging.Logger | None = None) -> "Stage":
        """A cached, resumable stage: ``with store.stage(...) as st: for u in st.pending(): ...``."""
        from .stage import Stage

        return Stage(self, name, fingerprint=fingerprint, params=params, inputs=inputs,
                     units=units, force=force, logger=logger)

    # -- maintenance ------------------------------------------------------------------------
    def size_bytes(self, physical: str | None = None) -> int | None:
        if self.local_dir is None:
            return None
        root = self.local_dir / f"{physical}.lance" if physical else self.local_dir
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0

    def info(self) -> dict[str, Any]:
        """Tables with rows, versions, indices and size; artifacts summary."""
        tables = []
        for physical in self.table_names():
            handle = self._open(physical)
            entry: dict[str, Any] = {
                "table": physical,
                "rows": handle.count_rows(),
                "version": handle.version,
                "indices": sorted(c for ix in handle.list_indices() for c in ix.columns),
                "bytes": self.size_bytes(physical),
            }
            if physical.startswith(EMBEDDINGS_PREFIX):
                entry["dim"], entry["dtype"] = schemas.vector_info(handle.schema)
            tables.append(entry)
        stages: dict[str, dict[str, int]] = {}
        if "artifacts" in self.table_names():
            summary = self.read("artifacts", where="unit = '*'", columns=["stage", "status"])
            for row in summary.iter_rows(named=True):
                stages.setdefault(row["stage"], {}).setdefault(row["status"], 0)
                stages[row["stage"]][row["status"]] += 1
        return {"uri": self.uri, "schema_version": schemas.SCHEMA_VERSION, "tables": tables,
                "bytes": self.size_bytes(), "stages": stages}

    def optimize(self, table: str | None = None, keep_versions_days: float = 7.0) -> dict[str, Any]:
        """Compact small fragments, fold new rows into indices, drop versions older than N days."""
        report: dict[str, Any] = {}
        names = self._physicals(table) if table else self.table_names()
        for physical in names:
            handle = self._open(physical)
            if handle is None:
                continue
            with self.locks.hold("table", physical):
                before = self.size_bytes(physical)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    handle.optimize(cleanup_older_than=timedelta(days=keep_versions_days))
                report[physical] = {"bytes_before": before, "bytes_after": self.size_bytes(physical),
                                    "version": handle.version}
        return report

    def drop_table(self, physical: str) -> None:
        with self.locks.hold("table", physical):
            self.db.drop_table(physical, ignore_missing=True)
            self._tables.pop(physical, None)
            self._schemas.pop(physical, None)
            self._indexed.discard(physical)


def fixed_list_to_numpy(column: pa.ChunkedArray | pa.Array, dtype: pa.DataType) -> np.ndarray:
    """Fixed-size list column -> (n, dim) numpy array (zero-copy for a single chunk)."""
    width = dtype.list_size
    value_type = dtype.value_type.to_pandas_dtype()
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if not chunks:
        return np.empty((0, width), dtype=value_type)
    arrays = [c.flatten().to_numpy(zero_copy_only=False).reshape(-1, width) for c in chunks]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def open_store(uri: str | os.PathLike[str] | None = None, *, consistent: bool = True,
               storage_options: dict[str, str] | None = None) -> FeatureStore:
    """Open (creating on first write) the store at ``uri``: ``$PMX_STORE`` or ``./.pmx/store``.

    ``consistent=True`` makes every read see other processes' latest commits; training readers
    pass ``False`` to read one snapshot without re-checking for new versions.
    """
    if uri is None:
        from pmx.methods import default_store

        uri = default_store()
    return FeatureStore(uri, consistent=consistent, storage_options=storage_options)
