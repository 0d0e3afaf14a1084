"""Torch datasets that read training data from the store.

* `BagDataset`: one item per patient, the bag of all its tile vectors (MIL), one indexed query.
* `TileDataset`: one item per tile: stored pixels, or pixels read from the slide (tile or a
  larger region around it) with OpenSlide.
* `OmicsDataset`: one item per patient, its omics vector(s) for one source and fold.

Each dataset pins the table versions it was built on, so training sees one snapshot even while
other processes keep writing. Datasets pickle without open handles: Lance and OpenSlide objects
are opened lazily inside each worker. Use ``multiprocessing_context="spawn"`` for DataLoader
workers (Lance is not fork-safe); `loader_kwargs` returns the right settings.
"""

from __future__ import annotations

import io
import warnings
from concurrent.futures import Future
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from pmx.errors import DataError

from . import schemas
from .omics import RAW, read_omics
from .store import FeatureStore, open_store, sql_and, sql_in, sql_literal


def loader_kwargs(num_workers: int) -> dict[str, Any]:
    """DataLoader settings that are safe with the store: ``spawn`` workers, kept alive."""
    if num_workers <= 0:
        return {"num_workers": 0}
    return {"num_workers": num_workers, "multiprocessing_context": "spawn",
            "persistent_workers": True}


def _as_store(store: FeatureStore | str) -> FeatureStore:
    if isinstance(store, FeatureStore):
        return store
    return open_store(store, consistent=False)


def survival_of(store: FeatureStore, patient_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(time, event) arrays in ``patient_ids`` order; a clear error for missing outcomes."""
    table = store.read_arrow("patients", where=sql_in("patient_id", patient_ids),
                             columns=["patient_id", "time", "event"])
    found = {p: (t, e) for p, t, e in zip(table.column("patient_id").to_pylist(),
                                          table.column("time").to_pylist(),
                                          table.column("event").to_pylist())}
    missing = [p for p in patient_ids if p not in found or found[p][0] is None or found[p][1] is None]
    if missing:
        raise DataError(f"no survival outcome (time, event) in the store's patients table for "
                        f"patient(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; "
                        "ingest the clinical table or pass with_survival=False")
    time = np.array([found[p][0] for p in patient_ids], dtype=np.float32)
    event = np.array([found[p][1] for p in patient_ids], dtype=bool)
    return time, event


class BagDataset(Dataset):
    """Bags of tile vectors per patient for multiple-instance learning.

    Items are dicts: ``patient_id``, ``features`` (n_tiles, dim) float tensor and, with
    ``with_survival``, ``time`` and ``event``. ``max_instances`` subsamples large bags (a new
    random subset each time an item is read, reproducible from ``seed``, index and epoch).
    """

    def __init__(self, store: FeatureStore | str, encoder: str,
                 patient_ids: Sequence[str] | None = None, *, with_survival: bool = True,
                 max_instances: int | None = None, seed: int = 0,
                 dtype: torch.dtype = torch.float32):
        self.store = _as_store(store)
        self.encoder = encoder
        physical = schemas.embeddings_table_name(encoder)
        if not self.store.has_table(physical):
            raise DataError(f"store {self.store.uri} has no embeddings for encoder {encoder!r}; "
                            f"encoders: {', '.join(self.store.encoders()) or '(none)'}")
        self.version = self.store.versions([physical])[physical]
        # where every bag's rows are (one key scan): items are range reads, in every worker
        self.index = self.store.bag_index(encoder, self.version)
        if patient_ids is None:
            patient_ids = sorted(self.index.patients)
        self.patient_ids = list(patient_ids)
        self.with_survival = with_survival
        if with_survival:
            self.time, self.event = survival_of(self.store, self.patient_ids)
        self.max_instances = max_instances
        self.seed = seed
        self.epoch = 0
        self.dtype = dtype
        self.dim, self.vector_dtype = schemas.vector_info(self.store.table_at(physical, self.version).schema)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.patient_ids)

    def bag(self, index: int) -> np.ndarray:
        return self.finish_bag(index, self.read_ahead(index).result())

    def read_ahead(self, index: int) -> Future:
        """Start reading item ``index``'s bag; `finish_bag` turns the result into the bag
        (`BagLoader` keeps a few of these in flight)."""
        return self.store.read_bag_async(self.encoder, patient_id=self.patient_ids[index],
                                         version=self.version, index=self.index)

    def finish_bag(self, index: int, vectors: np.ndarray) -> np.ndarray:
        patient = self.patient_ids[index]
        if len(vectors) == 0:
            raise DataError(f"patient {patient} has no vectors for encoder {self.encoder!r} in "
                            f"{self.store.uri}; run the embed stage for its slides")
        if self.max_instances and len(vectors) > self.max_instances:
            rng = np.random.default_rng([self.seed, index, self.epoch])
            pick = np.sort(rng.choice(len(vectors), self.max_instances, replace=False))
            vectors = vectors[pick]
        return vectors

    def item(self, index: int, vectors: np.ndarray) -> dict[str, Any]:
        """Item ``index`` built from its bag (as `bag` returns it)."""
        item: dict[str, Any] = {"patient_id": self.patient_ids[index],
                                "features": _to_tensor(vectors, self.dtype)}
        if self.with_survival:
            item["time"] = torch.tensor(self.time[index])
            item["event"] = torch.tensor(self.event[index])
        return item

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.item(index, self.bag(index))


def _to_tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """Arrow-backed arrays are read-only: convert or copy once instead of sharing their memory."""
    array = np.ascontiguousarray(array)
    if array.flags.writeable:
        return torch.from_numpy(array).to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "non-writable array": we copy right away
        tensor = torch.from_numpy(array)
    return tensor.clone() if tensor.dtype == dtype else tensor.to(dtype)


def collate_bags(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad bags to the longest one: ``features`` (B, N, D) and a boolean ``mask`` (B, N)."""
    longest = max(item["features"].shape[0] for item in batch)
    dim = batch[0]["features"].shape[1]
    features = batch[0]["features"].new_zeros((len(batch), longest, dim))
    mask = torch.zeros((len(batch), longest), dtype=torch.bool)
    for i, item in enumerate(batch):
        n = item["features"].shape[0]
        features[i, :n] = item["features"]
        mask[i, :n] = True
    out: dict[str, Any] = {"patient_id": [item["patient_id"] for item in batch],
                           "features": features, "mask": mask}
    for key in ("time", "event"):
        if key in batch[0]:
            out[key] = torch.stack([item[key] for item in batch])
    return out


def decode_pixels(data: bytes, fmt: str | None, size: int | None) -> np.ndarray:
    """Stored tile bytes -> (h, w, 3) uint8."""
    if fmt in (None, "jpeg", "jpg", "png", "webp"):
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    if fmt == "raw":
        if not size:
            raise DataError("raw tile pixels need the tile size to be decoded")
        return np.frombuffer(data, dtype=np.uint8).reshape(size, size, 3)
    raise DataError(f"unknown tile pixel format {fmt!r}; expected jpeg, png or raw")


class TileDataset(Dataset):
    """Tiles of one tiler run as images, from stored pixels or read from the slide.

    ``source``: ``"store"`` (stored pixels only), ``"slide"`` (always read the slide with
    OpenSlide) or ``"auto"`` (stored pixels when present). A slide read repeats the tiler's own
    read (``size`` px at ``level``, resized to ``out_size``: `pmx.tiling.read_tile`), so it
    gives the tiler's pixels also for resampled tiles. ``region=(w, h)`` reads a region of that
    size at the tile's level, anchored at the tile's corner, instead of the tile itself.
    Items: ``image`` (3, h, w) uint8 tensor (or ``transform(PIL image)``), ``slide_id``,
    ``patient_id``, ``x``, ``y``, ``level``.
    """

    def __init__(self, store: FeatureStore | str, tiler: str, slide_ids: Sequence[str] | None = None,
                 *, min_tissue: float | None = None, source: str = "auto",
                 region: tuple[int, int] | None = None,
                 transform: Callable[[Any], Any] | None = None):
        if source not in ("auto", "store", "slide"):
            raise ValueError("source must be auto, store or slide")
        self.store = _as_store(store)
        self.source, self.region, self.transform = source, region, transform
        self.version = self.store.versions(["tiles"]).get("tiles")
        if self.version is None:
            raise DataError(f"store {self.store.uri} has no tiles yet; run the tile stage first")
        where = sql_and(f"tiler = {sql_literal(tiler)}",
                        sql_in("slide_id", slide_ids) if slide_ids is not None else None,
                        f"tissue >= {float(min_tissue)}" if min_tissue is not None else None)
        handle = self.store.table_at("tiles", self.version)
        columns = {c: c for c in ("slide_id", "patient_id", "level", "x", "y", "size", "out_size",
                                  "pixel_format")}
        columns["has_pixels"] = "pixels IS NOT NULL"
        table = handle.search().where(where).select(columns).with_row_id(True).limit(None).to_arrow()
        if table.num_rows == 0:
            raise DataError(f"no tiles for tiler {tiler!r} in {self.store.uri}"
                            + (f" for slides {', '.join(list(slide_ids)[:5])}" if slide_ids else ""))
        self.rows = table.to_pydict()
        if source == "store" and not all(self.rows["has_pixels"]):
            raise DataError(f"tiler {tiler!r} stored no pixels for some tiles; use source='slide'")
        self.paths: dict[str, str] = {}
        if source != "store":
            slides = self.store.read_arrow("slides", where=sql_in("slide_id", set(self.rows["slide_id"])),
                                           columns=["slide_id", "path"])
            self.paths = dict(zip(slides.column("slide_id").to_pylist(), slides.column("path").to_pylist()))
        self._slides: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_slides"] = {}  # OpenSlide handles are reopened in each worker
        return state

    def __len__(self) -> int:
        return len(self.rows["slide_id"])

    def _slide(self, slide_id: str) -> Any:
        handle = self._slides.get(slide_id)
        if handle is None:
            from pmx.slides import open_slide

            path = self.paths.get(slide_id)
            if not path:
                raise DataError(f"slide {slide_id} has no path in the store's slides table; "
                                "ingest the slide (or store tile pixels)")
            handle = open_slide(path, slide_id=slide_id)  # DataError naming the file if unreadable
            self._slides[slide_id] = handle
        return handle

    def pixels(self, index: int) -> np.ndarray:
        row = {key: values[index] for key, values in self.rows.items()}
        if self.region is None and self.source != "slide" and row["has_pixels"]:
            data = self.store.table_at("tiles", self.version).take_row_ids(
                [row["_rowid"]]).select(["pixels"]).to_arrow().column("pixels")[0].as_py()
            return decode_pixels(data, row["pixel_format"], row["out_size"] or row["size"])
        if self.region is None:
            from pmx.tiling import read_tile

            return read_tile(self._slide(row["slide_id"]), row)
        level = max(int(row["level"]), 0)
        width, height = (int(v) for v in self.region)
        return self._slide(row["slide_id"]).read_level(int(row["x"]), int(row["y"]), level,
                                                      width, height)

    def __getitem__(self, index: int) -> dict[str, Any]:
        array = self.pixels(index)
        if self.transform is not None:
            from PIL import Image

            image: Any = self.transform(Image.fromarray(array))
        else:
            image = _to_tensor(array, torch.uint8).permute(2, 0, 1)
        return {"image": image, "slide_id": self.rows["slide_id"][index],
                "patient_id": self.rows["patient_id"][index], "x": self.rows["x"][index],
                "y": self.rows["y"][index], "level": self.rows["level"][index]}


class OmicsDataset(Dataset):
    """Omics vectors per patient for one or more modalities (one source and fold each).

    ``sources`` maps modality -> ``raw`` or a selector fingerprint (default ``raw`` for all).
    Items: ``patient_id``, ``omics`` (a tensor for one modality, else a dict of tensors) and,
    with ``with_survival``, ``time`` and ``event``. Patients default to those with every modality.
    """

    def __init__(self, store: FeatureStore | str, modalities: str | Sequence[str], *,
                 sources: dict[str, str] | str = RAW, fold: int = -1,
                 patient_ids: Sequence[str] | None = None, with_survival: bool = True):
        store = _as_store(store)
        self.single = isinstance(modalities, str)
        self.modalities = [modalities] if isinstance(modalities, str) else list(modalities)
        if isinstance(sources, str):
            sources = {m: sources for m in self.modalities}
        self.matrices = {}
        for modality in self.modalities:
            source = sources.get(modality, RAW)
            self.matrices[modality] = read_omics(store, modality=modality, source=source,
                                                 fold=-1 if source == RAW else fold)
        if patient_ids is None:
            common = set.intersection(*(set(m.patient_ids) for m in self.matrices.values()))
            patient_ids = sorted(common)
        self.patient_ids = list(patient_ids)
        self.values = {}
        for modality, matrix in self.matrices.items():
            position = {p: i for i, p in enumerate(matrix.patient_ids)}
            missing = [p for p in self.patient_ids if p not in position]
            if missing:
                raise DataError(f"omics {modality} ({matrix.source}) has no values for patient(s) "
                                f"{', '.join(missing[:5])}")
            self.values[modality] = torch.from_numpy(
                matrix.values[[position[p] for p in self.patient_ids]])
        self.features = {m: mat.features for m, mat in self.matrices.items()}
        self.with_survival = with_survival
        if with_survival:
            self.time, self.event = survival_of(store, self.patient_ids)

    def __len__(self) -> int:
        return len(self.patient_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        omics = {m: v[index] for m, v in self.values.items()}
        item: dict[str, Any] = {"patient_id": self.patient_ids[index],
                                "omics": omics[self.modalities[0]] if self.single else omics}
        if self.with_survival:
            item["time"] = torch.tensor(self.time[index])
            item["event"] = torch.tensor(self.event[index])
        return item
