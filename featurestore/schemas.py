"""Table schemas of the feature store, in one versioned module.

Every table has *key* columns (a row is identified by them: writes merge on them, so a rerun
never duplicates) and *indexed* columns (BTree scalar indices on the keys used to fetch a
patient's or a slide's rows, so fetching a bag is an index lookup, not a scan).

Bump ``SCHEMA_VERSION`` whenever a column is added, removed or changes type; stores record the
version they were created with and refuse to open with a newer, incompatible module.

Embeddings are one logical table stored as one physical table per encoder fingerprint
(``embeddings__<encoder>``), because each encoder has its own fixed vector width and dtype and
because dropping an encoder's vectors is then a table drop instead of a rewrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

from pmx.errors import DataError

#: 2: tiles gained out_size, extent and score (the exact read behind each tile's pixels)
SCHEMA_VERSION = 2
SCHEMA_VERSION_KEY = b"pmx.schema_version"
EMBEDDINGS = "embeddings"
EMBEDDINGS_PREFIX = "embeddings__"
VECTOR_DTYPES: dict[str, pa.DataType] = {"float16": pa.float16(), "float32": pa.float32()}

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    """A logical table: arrow schema, key columns (for merges) and indexed columns."""

    name: str
    schema: pa.Schema
    keys: tuple[str, ...]
    indexed: tuple[str, ...] = ()
    doc: str = ""
    #: column whose values name the unit rows belong to (fast append path when a unit is new)
    partition: str | None = None
    descriptions: dict[str, str] = field(default_factory=dict)
    #: big rows (vectors, pixels): never compacted automatically, only reindexed (see store)
    bulk: bool = False

    def with_version(self) -> pa.Schema:
        return self.schema.with_metadata({SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode()})


def _schema(*columns: tuple[str, pa.DataType, bool, str]) -> tuple[pa.Schema, dict[str, str]]:
    fields = [pa.field(name, dtype, nullable=nullable) for name, dtype, nullable, _ in columns]
    return pa.schema(fields), {name: doc for name, _, _, doc in columns}


def _spec(name: str, doc: str, keys: tuple[str, ...], indexed: tuple[str, ...],
          columns: list[tuple[str, pa.DataType, bool, str]], partition: str | None = None,
          bulk: bool = False) -> TableSpec:
    schema, descriptions = _schema(*columns)
    return TableSpec(name, schema, keys, indexed, doc, partition, descriptions, bulk)


PATIENTS = _spec(
    "patients", "One row per patient: survival outcome, site and cohort.",
    keys=("patient_id",), indexed=("patient_id",),
    columns=[
        ("patient_id", pa.string(), False, "patient identifier (TCGA: first 12 barcode characters)"),
        ("time", pa.float64(), True, "follow-up time (event or censoring), in the cohort's unit (days or months)"),
        ("event", pa.bool_(), True, "True if the event (death) was observed at `time`"),
        ("site", pa.string(), True, "tissue source site / centre"),
        ("cohort", pa.string(), True, "cohort or project, e.g. TCGA-BLCA"),
        ("clinical", pa.string(), True, "other clinical fields as a JSON object"),
    ],
)

SLIDES = _spec(
    "slides", "One row per whole-slide image.",
    keys=("slide_id",), indexed=("slide_id", "patient_id"),
    columns=[
        ("slide_id", pa.string(), False, "slide identifier (file stem or TCGA slide barcode)"),
        ("patient_id", pa.string(), False, "patient the slide belongs to"),
        ("path", pa.string(), True, "where the slide file is (path or URI)"),
        ("vendor", pa.string(), True, "OpenSlide vendor (aperio, hamamatsu, generic-tiff, ...)"),
        ("mpp", pa.float64(), True, "microns per pixel at level 0"),
        ("magnification", pa.float64(), True, "objective power at level 0"),
        ("width", pa.int64(), True, "level-0 width in pixels"),
        ("height", pa.int64(), True, "level-0 height in pixels"),
        ("fingerprint", pa.string(), True, "content fingerprint of the slide file"),
    ],
)

TILES = _spec(
    "tiles", "Tile records of a tiler run: coordinates, the exact read behind the pixels, "
    "tissue and score, and optional pixels.",
    keys=("tiler", "slide_id", "level", "x", "y"), indexed=("slide_id", "patient_id", "tiler"),
    partition="slide_id", bulk=True,
    columns=[
        ("tiler", pa.string(), False, "tiler fingerprint"),
        ("slide_id", pa.string(), False, "slide the tile comes from"),
        ("patient_id", pa.string(), True, "patient of the slide (denormalised for bag queries)"),
        ("level", pa.int32(), False, "pyramid level the tile was read at"),
        ("mpp", pa.float64(), True, "microns per pixel of the tile pixels (after resampling)"),
        ("x", pa.int64(), False, "left edge, level-0 pixels"),
        ("y", pa.int64(), False, "top edge, level-0 pixels"),
        ("size", pa.int32(), True, "edge of the read at `level`, in that level's pixels: "
                                   "read_region((x, y), level, (size, size))"),
        ("out_size", pa.int32(), True, "edge of the tile pixels: the read is resized to it when "
                                       "it differs from `size` (null = `size`, no resampling)"),
        ("extent", pa.float64(), True, "edge of the tile in level-0 pixels (the tiler's box)"),
        ("tissue", pa.float32(), True, "tissue fraction in [0, 1]"),
        ("score", pa.float32(), True, "the tiler's ranking score (tissue fraction, dark-tissue "
                                      "score or HSV count)"),
        ("pixels", pa.binary(), True, "encoded tile pixels (optional)"),
        ("pixel_format", pa.string(), True, "encoding of `pixels`: jpeg, png or raw"),
    ],
)

OMICS = _spec(
    "omics", "Omics vectors per patient: raw values per modality, or one selector's output per fold.",
    keys=("patient_id", "modality", "source", "fold"), indexed=("patient_id", "source"), bulk=True,
    columns=[
        ("patient_id", pa.string(), False, "patient"),
        ("modality", pa.string(), False, "rna, mirna, methylation, cnv, mutation, ..."),
        ("source", pa.string(), False, "'raw' (ingested values) or the selector fingerprint"),
        ("fold", pa.int32(), False, "CV fold the selector was fit on; -1 for raw values"),
        ("values", pa.list_(pa.float32()), False, "feature values, in the order of omics_features"),
    ],
)

OMICS_FEATURES = _spec(
    "omics_features", "Feature names, kept once per (modality, source, fold) instead of per row.",
    keys=("modality", "source", "fold"), indexed=(),
    columns=[
        ("modality", pa.string(), False, "modality"),
        ("source", pa.string(), False, "'raw' or selector fingerprint"),
        ("fold", pa.int32(), False, "fold, -1 for raw"),
        ("features", pa.list_(pa.string()), False, "feature names (genes, probes, ...)"),
        ("groups", pa.list_(pa.string()), True, "optional group of each feature (e.g. gene family)"),
    ],
)

SPLITS = _spec(
    "splits", "Cross-validation folds: which part (train, val, test) each patient is in.",
    keys=("split", "fold", "patient_id"), indexed=("split",),
    columns=[
        ("split", pa.string(), False, "fingerprint of the split (cohort, k, seed, stratification)"),
        ("seed", pa.int64(), True, "seed the folds were drawn with"),
        ("fold", pa.int32(), False, "fold number, 0-based"),
        ("patient_id", pa.string(), False, "patient"),
        ("part", pa.string(), False, "train, val or test"),
    ],
)

ARTIFACTS = _spec(
    "artifacts", "Lineage of every cached output: one row per stage unit plus one per stage ('*').",
    keys=("key", "unit"), indexed=("key", "stage"), partition="unit",
    columns=[
        ("key", pa.string(), False, "content address: hash of stage, fingerprint, params and inputs"),
        ("unit", pa.string(), False, "unit of work (slide, fold, ...); '*' is the stage summary"),
        ("stage", pa.string(), False, "stage name (tile, embed, select, ...)"),
        ("fingerprint", pa.string(), False, "component fingerprint"),
        ("params", pa.string(), True, "stage parameters as JSON"),
        ("inputs", pa.list_(pa.string()), True, "fingerprints (keys) of the inputs"),
        ("status", pa.string(), False, "running, done, partial or failed"),
        ("rows", pa.int64(), True, "rows written by the unit (or the whole stage)"),
        ("units", pa.int64(), True, "number of units of the stage (summary row)"),
        ("started_at", TIMESTAMP, True, "when work on the unit started"),
        ("finished_at", TIMESTAMP, True, "when the unit completed"),
        ("host", pa.string(), True, "host:pid of the writer"),
    ],
)

RUNS = _spec(
    "runs", "One row per `pmx run`.",
    keys=("run_id",), indexed=("run_id",),
    columns=[
        ("run_id", pa.string(), False, "run identifier"),
        ("method", pa.string(), True, "method name"),
        ("preset", pa.string(), True, "preset name"),
        ("config", pa.string(), True, "resolved config as JSON"),
        ("cohort", pa.string(), True, "cohort"),
        ("status", pa.string(), True, "running, done or failed"),
        ("started_at", TIMESTAMP, True, "start time"),
        ("finished_at", TIMESTAMP, True, "end time"),
        ("out_dir", pa.string(), True, "run directory"),
    ],
)

PREDICTIONS = _spec(
    "predictions", "Risk per patient and fold of a run.",
    keys=("run_id", "fold", "patient_id"), indexed=("run_id",),
    columns=[
        ("run_id", pa.string(), False, "run"),
        ("fold", pa.int32(), False, "fold"),
        ("patient_id", pa.string(), False, "patient"),
        ("part", pa.string(), True, "test (default), val or train"),
        ("risk", pa.float64(), False, "predicted risk (higher = shorter survival)"),
        ("time", pa.float64(), True, "observed time"),
        ("event", pa.bool_(), True, "observed event"),
        ("survival", pa.list_(pa.float32()), True, "optional survival curve at the run's time bins"),
    ],
)

METRICS = _spec(
    "metrics", "Evaluation metrics per run and fold (-1 = aggregated over folds).",
    keys=("run_id", "fold", "name"), indexed=("run_id",),
    columns=[
        ("run_id", pa.string(), False, "run"),
        ("fold", pa.int32(), False, "fold; -1 for the aggregate"),
        ("name", pa.string(), False, "metric name (c_index, uno_c, ibs, logrank_p, ...)"),
        ("value", pa.float64(), True, "value"),
    ],
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (PATIENTS, SLIDES, TILES, OMICS, OMICS_FEATURES, SPLITS, ARTIFACTS, RUNS,
                 PREDICTIONS, METRICS)
}

EMBEDDING_KEYS = ("encoder", "slide_id", "tiler", "level", "x", "y")
EMBEDDING_INDEXED = ("slide_id", "patient_id")
_EMBEDDING_DOCS = {
    "encoder": "encoder fingerprint",
    "tiler": "tiler fingerprint of the tile (part of the tile key)",
    "slide_id": "slide (part of the tile key)",
    "patient_id": "patient of the slide (denormalised: one indexed query per bag)",
    "level": "pyramid level of the tile (part of the tile key); -1 when unknown",
    "x": "tile left edge, level-0 pixels (part of the tile key)",
    "y": "tile top edge, level-0 pixels (part of the tile key); -1 when unknown",
    "vector": "fixed-size float16 or float32 embedding",
}


def embeddings_schema(dim: int, dtype: str = "float32") -> pa.Schema:
    """Schema of one encoder's embeddings table (vector width and dtype fixed per encoder)."""
    if dtype not in VECTOR_DTYPES:
        raise DataError(f"embedding dtype {dtype!r} is not supported; use float16 or float32")
    if dim <= 0:
        raise DataError(f"embedding width must be positive, got {dim}")
    return pa.schema([
        pa.field("encoder", pa.string(), nullable=False),
        pa.field("tiler", pa.string(), nullable=False),
        pa.field("slide_id", pa.string(), nullable=False),
        pa.field("patient_id", pa.string(), nullable=True),
        pa.field("level", pa.int32(), nullable=False),
        pa.field("x", pa.int64(), nullable=False),
        pa.field("y", pa.int64(), nullable=False),
        pa.field("vector", pa.list_(VECTOR_DTYPES[dtype], dim), nullable=False),
    ])


def embeddings_spec(encoder: str, dim: int, dtype: str = "float32") -> TableSpec:
    schema = embeddings_schema(dim, dtype)
    return TableSpec(embeddings_table_name(encoder), schema, EMBEDDING_KEYS, EMBEDDING_INDEXED,
                     "Embeddings of one encoder: one fixed-size vector per tile.", "slide_id",
                     dict(_EMBEDDING_DOCS), bulk=True)


_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def embeddings_table_name(encoder: str) -> str:
    """Physical table of one encoder's vectors (the encoder fingerprint is part of the name)."""
    if not _SAFE.match(encoder):
        raise DataError(
            f"encoder fingerprint {encoder!r} cannot name a table: use letters, digits, '_', '.', '-'"
        )
    return EMBEDDINGS_PREFIX + encoder


def vector_info(schema: pa.Schema) -> tuple[int, str]:
    """(width, dtype) of an embeddings table's vector column."""
    dtype = schema.field("vector").type
    for name, value in VECTOR_DTYPES.items():
        if dtype.value_type == value:
            return dtype.list_size, name
    raise DataError(f"unexpected vector type {dtype}")


def spec_for(name: str) -> TableSpec:
    """Spec of a logical table, with an error listing the tables that exist."""
    try:
        return TABLES[name]
    except KeyError:
        valid = ", ".join([*TABLES, EMBEDDINGS])
        raise DataError(f"unknown store table {name!r}; tables: {valid}") from None


#: Tables whose layout changed: how to get rid of an old-layout table ({uri} = the store).
#: A stored table that lacks columns of its spec was written by an older pmx; it is refused
#: on open (``check_layout``) instead of failing later with a Lance schema error, or worse,
#: being read with the wrong meaning.
LAYOUT_FIXES: dict[str, str] = {
    "tiles": (
        "re-tile with `pmx tile --tiler NAME --force --store {uri}` (or tile_store_slides(..., "
        "force=True)): it drops the old tiles table, with the tiles of every tiler and their "
        "`tile` stage records, and writes the new layout; then run `pmx tile` again for any "
        "other tiler you use. Embeddings are keyed by tile position and stay valid"
    ),
}


def missing_columns(name: str, schema: pa.Schema) -> list[str]:
    """Columns of ``name``'s spec that a stored table with ``schema`` lacks (only for tables
    listed in ``LAYOUT_FIXES``; empty when the layout is current)."""
    if name not in LAYOUT_FIXES or name not in TABLES:
        return []
    return [n for n in TABLES[name].schema.names if n not in schema.names]


def check_layout(name: str, schema: pa.Schema, uri: str) -> None:
    """Refuse an old-layout table, naming the store, the missing columns and the fix."""
    missing = missing_columns(name, schema)
    if not missing:
        return
    stored = (schema.metadata or {}).get(SCHEMA_VERSION_KEY, b"1").decode()
    raise DataError(
        f"store {uri}: its {name} table was written by an older pmx (store schema version "
        f"{stored}; this pmx writes version {SCHEMA_VERSION}) and lacks the column(s) "
        f"{', '.join(missing)}, so its rows cannot be read back as written. Fix: "
        + LAYOUT_FIXES[name].format(uri=uri) + "."
    )
