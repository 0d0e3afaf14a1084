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
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

os.environ.setdefault("LANCE_LOG", "error")  # Lance logs a WARN line for every new table

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pmx.errors import DataError

from . import aio, schemas
from .bagindex import MAX_RUNS, BagIndex, build_index, read_runs, vectors_of
from .convert import Rows, conform, dedupe_keys, to_arrow, vector_dtype_of
from .locks import LockDir
from .schemas import EMBEDDINGS, EMBEDDINGS_PREFIX, TableSpec

log = logging.getLogger("pmx.store")

LOCK_DIR = "_locks"
MAINTAIN_EVERY = 32  # commits to a table between index/compaction upkeep (see _maintain)
COMPACT_MAX_ROWS = 200_000  # tables up to this size are compacted; bigger ones only reindexed
META_TABLE = "_meta"
KEEP_VERSIONS = timedelta(days=36500)  # automatic upkeep never prunes lineage; `gc` does
#: Lance file format of new embeddings tables. Measured on 6,000 x 1024-d float16 bags: 2.0
#: writes fixed-size vectors ~1.3x and reads them ~1.4x cheaper than 2.1/2.2, whose
#: structural encodings (made for compressible and nested data) do not pay off on vectors.
EMBEDDINGS_FILE_VERSION = "2.0"
#: filtered bag reads of one table version before its row runs are indexed (`BagIndex`)
BAG_INDEX_AFTER = 2
#: write_embeddings learns which slides a table holds with one key scan up to this many rows
#: (bigger tables are asked per slide with an indexed count)
UNIT_SCAN_MAX_ROWS = 4_000_000
PINNED_HANDLES = 8  # table handles pinned to old versions kept open per store handle


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
        self._pinned: list[str] = []  # table_at cache keys, oldest first
        self._bag_indices: dict[tuple[str, int], BagIndex] = {}
        self._readers: dict[tuple[str, int], Any] = {}  # async tables pinned for range reads
        self._readers_pid = os.getpid()
        self._bag_misses: dict[tuple[str, int], int] = {}
        # versions this handle committed itself, per table (see `caught_up`)
        self._own: dict[str, set[int]] = {}
        # (version, {(slide_id, tiler)}) per embeddings table: what it held at that version
        self._units: dict[str, tuple[int, set[tuple[str, str]]]] = {}
        self._unit_scans: dict[str, int] = {}  # writes since the last unit scan, per table

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
        schemas.check_layout(physical, table.schema, self.uri)  # old-layout table: clear error
        self._tables[physical] = table
        return table

    def _create(self, spec: TableSpec) -> Any:
        embeddings = spec.name.startswith(EMBEDDINGS_PREFIX)
        try:
            table = self.db.create_table(
                spec.name, schema=spec.with_version(),
                storage_options={"new_table_data_storage_version": EMBEDDINGS_FILE_VERSION}
                if embeddings else None)
        except (ValueError, OSError, RuntimeError) as exc:  # created concurrently
            if spec.name not in self._physical_names():
                raise DataError(f"cannot create table {spec.name!r} in {self.uri}: {exc}") from exc
            table = self.db.open_table(spec.name)
        else:
            self._mine(spec.name, table.version)
            if embeddings:  # we made it: it holds no slide yet
                self._units[spec.name] = (table.version, set())
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
            schemas.check_layout(physical, table.schema, self.uri)
            self._tables[cache_key] = table
            self._pinned.append(cache_key)
            if len(self._pinned) > PINNED_HANDLES:  # a long-lived writer pins many versions
                self._tables.pop(self._pinned.pop(0), None)
        return table

    def head(self, physical: str) -> int | None:
        """Latest version of a table (None if it does not exist); a consistent store looks."""
        handle = self._open(physical)
        return None if handle is None else handle.version

    def caught_up(self, physical: str, since: int | None) -> int | None:
        """``since`` advanced over the commits this handle made itself; the table's latest
        version if nobody else committed to it after ``since``, else None.

        Lets a writer trust what it knew at ``since`` (which slides a table holds, which
        units a stage has done) instead of asking the table again. Only a local, consistent
        store can tell (its writers hold the table lock while committing).
        """
        if since is None or not self.consistent or self.local_dir is None:
            return None
        own = self._own.get(physical, set())
        while since + 1 in own:
            since += 1
        return since if since == self.head(physical) else None

    def _mine(self, physical: str, *versions: int | None) -> None:
        """Record versions this handle committed (see `caught_up`)."""
        own = self._own.setdefault(physical, set())
        own.update(int(v) for v in versions if v is not None)

    def _mine_since(self, physical: str, handle: Any, before: int) -> None:
        """Under the table lock: every version after ``before`` is ours (index upkeep)."""
        if self.consistent:
            self._mine(physical, *range(before + 1, handle.version + 1))

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
                self._mine(physical, handle.delete(where).version)
            self._units.pop(physical, None)  # which slides went is not known here

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
            repeated = _repeated_pairs(xs, ys)
            if repeated:
                raise DataError(f"slide {slide_id}: {repeated} repeated (x, y) coordinate(s); "
                                "each tile of a bag needs its own position")
        data = pa.table({
            "encoder": _repeat(encoder, n),
            "tiler": _repeat(tiler, n),
            "slide_id": _repeat(slide_id, n),
            "patient_id": _repeat(patient_id, n),
            "level": pa.array(np.full(n, levels, np.int32)),
            "x": pa.array(xs),
            "y": pa.array(ys),
            "vector": vectors_to_arrow(vectors, value_type),
        })
        spec = next(self._route(EMBEDDINGS, data))[0]
        return self._write_unit(spec, data, str(slide_id), str(tiler))

    def _write_unit(self, spec: TableSpec, data: pa.Table, slide_id: str, tiler: str) -> int:
        """Make one slide's rows exactly ``data``: delete what the slide had (if anything),
        then append, as one unit of commits.

        Whether the slide has rows is known without a query when this handle knows what the
        table held at some version and nobody else has committed since (`caught_up`): the
        usual case for a stage writing its slides, so a write costs one Lance append.
        """
        data = conform(data, spec.schema, where=f"table {spec.name}")
        where = sql_and(f"slide_id = {sql_literal(slide_id)}", f"tiler = {sql_literal(tiler)}")
        unit = (slide_id, tiler)
        with self.locks.hold("table", spec.name):
            handle = self._open(spec.name)
            if handle is None:
                handle = self._create(spec)
            units = self._known_units(spec.name, handle)
            present = unit in units if units is not None else handle.count_rows(where) > 0
            if present:
                self._mine(spec.name, handle.delete(where).version)
            committed = handle.add(data).version
            self._mine(spec.name, committed)
            if units is not None:
                units.add(unit)
            self._upkeep(handle, spec, committed)
        self._dirty.add(spec.name)
        return data.num_rows

    def _known_units(self, physical: str, handle: Any) -> set[tuple[str, str]] | None:
        """The (slide_id, tiler) units the table holds now, if this handle can know them
        without a query per slide (call with the table lock held); None otherwise."""
        known = self._units.get(physical)
        if known is not None:
            version = self.caught_up(physical, known[0])
            if version is not None:
                self._units[physical] = (version, known[1])
                return known[1]
            del self._units[physical]  # another process wrote: learn again (or count)
        if not self.consistent or self.local_dir is None:
            return None
        writes = self._unit_scans.get(physical, MAINTAIN_EVERY)
        self._unit_scans[physical] = writes + 1
        if writes < MAINTAIN_EVERY or handle.count_rows() > UNIT_SCAN_MAX_ROWS:
            return None  # at most one scan per MAINTAIN_EVERY writes while others write too
        self._unit_scans[physical] = 0
        version = handle.version
        keys = (self.table_at(physical, version).search().select(["slide_id", "tiler"])
                .limit(None).to_batches(batch_size=1 << 20).read_all())
        pairs = keys.group_by(["slide_id", "tiler"], use_threads=False).aggregate([])
        units = set(zip(pairs.column("slide_id").to_pylist(), pairs.column("tiler").to_pylist()))
        self._units[physical] = (version, units)
        return units

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
                    self._mine(spec.name, handle.delete(where).version)
                result = handle.add(data)
            elif mode == "append" or self._is_new(handle, spec, data):
                result = handle.add(data)
            else:
                result = (handle.merge_insert(list(spec.keys)).when_matched_update_all()
                          .when_not_matched_insert_all().execute(data))
            self._mine(spec.name, result.version)
            self._upkeep(handle, spec, result.version)
        self._units.pop(spec.name, None)  # (embeddings) which slides it holds: learn again
        self._dirty.add(spec.name)
        return data.num_rows

    def _upkeep(self, handle: Any, spec: TableSpec, committed: int) -> None:
        """Indices and compaction after our commit ``committed`` (with the table lock held);
        the versions they add are ours too."""
        if self._ensure_indices(handle, spec) | self._maintain(handle, spec):
            self._mine_since(spec.name, handle, committed)

    def _maintain(self, handle: Any, spec: TableSpec) -> bool:
        """Keep keyed writes fast as commits pile up (call with the table lock held).

        Every commit adds a fragment the indices do not cover, and key lookups scan those: after
        200 appends a lookup costs ~10x an indexed one. So after ``MAINTAIN_EVERY`` commits of
        this process, a small table is compacted (which also folds new rows into its indices);
        a big one (or a bulk one: tiles, embeddings, omics, too costly to rewrite) gets the
        scalar index of its unit column
        rebuilt once the unindexed rows reach a quarter of the indexed ones, so rebuilds cost
        O(1) per written row however large the table grows. Other indices are brought up to
        date when a stage completes (`refresh_touched`). A writer that knows which slides an
        embeddings table holds (`_known_units`) does no lookups, so it skips the rebuilds.
        Returns whether it committed.
        """
        if spec.bulk and spec.name in self._units:
            return False  # this writer knows the table's slides and looks nothing up
        commits = self._commits.get(spec.name, 0) + 1
        self._commits[spec.name] = commits
        if commits < MAINTAIN_EVERY:
            return False
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
            return True
        column = spec.partition or spec.indexed[0]
        for index in indices:
            if index.columns == [column]:
                if (index.num_unindexed_rows or 0) * 4 >= (index.num_indexed_rows or 0):
                    handle.create_index(column, config=_index_config(index.index_type),
                                        replace=True)
                    return True
                return False
        return False

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
    def _ensure_indices(self, handle: Any, spec: TableSpec) -> bool:
        """Create the spec's missing indices (once per handle); returns whether it committed."""
        if spec.name in self._indexed or not spec.indexed:
            return False
        present = {tuple(ix.columns) for ix in handle.list_indices()}
        created = False
        kind = "Bitmap" if spec.name.startswith(EMBEDDINGS_PREFIX) else "BTree"
        for column in spec.indexed:
            if (column,) not in present:
                try:
                    handle.create_index(column, config=_index_config(kind), replace=False)
                    created = True
                except (ValueError, RuntimeError, OSError) as exc:
                    if "already exists" not in str(exc):
                        raise
        self._indexed.add(spec.name)
        return created

    def refresh_indices(self, table: str | None = None) -> list[str]:
        """Rebuild indices that miss rows appended since they were built; returns tables touched.

        Appended rows are still found by queries (Lance scans the unindexed part), but a bag
        query is only index-fast once they are indexed. An index rebuild reads only the key
        column, so this is cheap next to compaction (`optimize`).
        """
        touched = []
        names = self._physicals(table) if table else self.table_names()
        for physical in names:
            handle = self._open(physical)
            if handle is None or not self.spec(physical).indexed:
                continue
            with self.locks.hold("table", physical):
                before = handle.version
                self._indexed.discard(physical)
                self._ensure_indices(handle, self.spec(physical))
                stale = [ix for ix in handle.list_indices() if ix.num_unindexed_rows]
                for ix in stale:
                    handle.create_index(ix.columns[0], config=_index_config(ix.index_type),
                                        replace=True)
                if stale:
                    touched.append(physical)
                self._mine_since(physical, handle, before)
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
                 version: int | None = None, index: BagIndex | None = None) -> Any:
        """All vectors of one patient (or slide) as an (n, dim) numpy array, rows in table order.

        With ``with_coords`` returns ``(vectors, coords, slide_ids)``. The array is the
        caller's (writable, shared with nothing). Reads go through the table's `BagIndex` for
        that version: ``index`` when given (a dataset builds it once), else one cached per
        version, built after a few reads; until then, or for a key whose rows are scattered
        over many runs, an indexed query. A missing key gives zero rows.
        """
        return self.read_bag_async(encoder, patient_id=patient_id, slide_id=slide_id,
                                   with_coords=with_coords, version=version, index=index).result()

    def read_bag_async(self, encoder: str, *, patient_id: str | None = None,
                       slide_id: str | None = None, with_coords: bool = False,
                       version: int | None = None, index: BagIndex | None = None) -> Future:
        """`read_bag` started now, its result (a `concurrent.futures.Future`) later.

        Why: range reads run on the reader loop, in Lance's threads without the GIL, so a
        caller can train on one bag while the next ones are read and decoded (`BagLoader`)
        without DataLoader worker processes. A read that needs a filtered query (no usable
        index) runs here, before this returns.
        """
        if (patient_id is None) == (slide_id is None):
            raise ValueError("give exactly one of patient_id or slide_id")
        physical = schemas.embeddings_table_name(encoder)
        pinned = version is not None
        if not pinned:
            version = self.head(physical)
            if version is None:
                raise DataError(f"store {self.uri} has no embeddings for encoder {encoder!r}; "
                                f"encoders: {', '.join(self.encoders()) or '(none)'}")
        columns = ["vector", "slide_id", "x", "y"] if with_coords else ["vector"]
        vector_type = self.stored_schema(physical).field("vector").type
        if index is None or index.version != version:
            index = self._cached_bag_index(physical, version)
        runs = index.runs(patient_id=patient_id, slide_id=slide_id) if index else None
        if runs is not None and len(runs) <= MAX_RUNS:  # offsets hold at that version only
            return aio.submit(self._bag_from_runs(physical, version, runs, columns, vector_type,
                                                  with_coords))
        where = (f"patient_id = {sql_literal(patient_id)}" if patient_id is not None
                 else f"slide_id = {sql_literal(slide_id)}")
        handle = self.table_at(physical, version) if pinned else self.table(physical)
        done: Future = Future()
        try:
            batches = handle.search().where(where).select(columns).limit(None).to_arrow().to_batches()
            done.set_result(_bag_result(batches, vector_type, with_coords))
        except Exception as exc:  # the caller sees it where it waits, as with a range read
            done.set_exception(exc)
        return done

    async def _bag_from_runs(self, physical: str, version: int, runs: Any, columns: list[str],
                             vector_type: pa.DataType, with_coords: bool) -> Any:
        """(On the reader loop) a bag read through its runs, converted there too: the copy of
        a multi-run bag into one array releases the GIL, so it overlaps with the caller."""
        batches = await self._read_runs(physical, version, runs, columns)
        return _bag_result(batches, vector_type, with_coords)

    async def _read_runs(self, physical: str, version: int, runs: Any, columns: list[str]) -> Any:
        """(On the reader loop) the runs' rows, through an async table pinned to ``version``."""
        if self._readers_pid != os.getpid():  # a forked copy: the parent's handles are not ours
            self._readers, self._readers_pid = {}, os.getpid()
        table = self._readers.get((physical, version))
        if table is None:
            table = await aio.open_pinned(self.uri, physical, version, self.storage_options)
            for key in [k for k in self._readers if k[0] == physical]:
                del self._readers[key]  # readers move on to newer versions, never back
            self._readers[(physical, version)] = table
        return await read_runs(table, runs, columns)

    def bag_index(self, encoder: str, version: int | None = None) -> BagIndex:
        """Where every patient's and slide's rows are in ``encoder``'s table at ``version``
        (default: the latest): one scan of the key columns, cached per version."""
        physical = schemas.embeddings_table_name(encoder)
        if version is None:
            version = self.head(physical)
            if version is None:
                raise DataError(f"store {self.uri} has no embeddings for encoder {encoder!r}; "
                                f"encoders: {', '.join(self.encoders()) or '(none)'}")
        index = self._bag_indices.get((physical, version))
        if index is None:
            index = build_index(self.table_at(physical, version), version)
            for key in [k for k in self._bag_indices if k[0] == physical]:
                del self._bag_indices[key]  # one version per table is enough
            self._bag_indices[(physical, version)] = index
        return index

    def _cached_bag_index(self, physical: str, version: int) -> BagIndex | None:
        """The table's index at ``version`` once it has been read from a few times (one-off
        reads of a big table should not pay for a scan of all its keys)."""
        index = self._bag_indices.get((physical, version))
        if index is not None:
            return index
        key = (physical, version)
        self._bag_misses[key] = self._bag_misses.get(key, 0) + 1
        if self._bag_misses[key] <= BAG_INDEX_AFTER:
            return None
        self._bag_misses = {k: v for k, v in self._bag_misses.items() if k[0] != physical}
        return self.bag_index(physical[len(EMBEDDINGS_PREFIX):], version)

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
            self._units.pop(physical, None)
            self._own.pop(physical, None)  # a new table of that name counts versions anew
            self._bag_indices = {k: v for k, v in self._bag_indices.items() if k[0] != physical}
            self._readers = {k: v for k, v in self._readers.items() if k[0] != physical}


def _repeat(value: str | None, n: int) -> pa.Array:
    """A string column of ``n`` copies of ``value`` built from its buffers (no n-item list)."""
    if value is None:
        return pa.nulls(n, pa.string())
    data = str(value).encode()
    offsets = np.arange(n + 1, dtype=np.int32) * len(data)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n))


def _index_config(kind: str) -> Any:
    """A scalar index config by type name. Embeddings tables index their keys with bitmaps:
    few distinct values (slides, patients) over many rows, where a bitmap builds ~3x cheaper
    than a BTree (no sort of every row's key) and answers an equality lookup as fast."""
    from lancedb.index import Bitmap, BTree

    return Bitmap() if kind.lower() == "bitmap" else BTree()


def _repeated_pairs(xs: np.ndarray, ys: np.ndarray) -> int:
    """How many (x, y) pairs repeat an earlier one (a sort, not a 2-d ``np.unique``)."""
    if len(xs) < 2:
        return 0
    order = np.lexsort((ys, xs))
    xs, ys = xs[order], ys[order]
    return int(np.count_nonzero((xs[1:] == xs[:-1]) & (ys[1:] == ys[:-1])))


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


def _bag_result(batches: Sequence[pa.RecordBatch], vector_type: pa.DataType, with_coords: bool) -> Any:
    """What `FeatureStore.read_bag` returns, from the bag's record batches."""
    vectors = vectors_of(batches, "vector", vector_type)
    if not with_coords:
        return vectors
    if not batches:
        return vectors, np.empty((0, 2), np.int64), np.empty(0, object)
    data = pa.Table.from_batches(batches)
    coords = np.stack([data.column("x").to_numpy(), data.column("y").to_numpy()], axis=1)
    return vectors, coords, data.column("slide_id").to_numpy(zero_copy_only=False)
