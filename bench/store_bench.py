"""Feature-store benchmark: MIL bag loading vs per-slide .pt files, and write throughput.

(1) Bag loading for MIL training: every patient's bag (all vectors of its slides) is loaded in
    a random patient order, from the store (`read_bag`: range reads through the table's bag
    index, built once per table version and timed apart as ``store_index_s``) and from CLAM-style
    per-slide ``.pt`` files holding the same vectors (one ``torch.load`` per slide, then a
    concatenation). Both produce a torch tensor in the stored dtype. Reported as patients/s and
    MB/s; the best of ``--passes`` passes (alternating which reader goes first).
    ``raw_file_mb_per_s`` reads the same .pt files as plain bytes: the memory-copy floor.
    Training readers, each at its best here: the store's `BagLoader` (2 bags read ahead in
    process) against .pt bags read ahead by 2 threads and by a DataLoader with 2 persistent
    workers (CLAM's way); ``loader_ratio_vs_pt`` is the store's over the faster .pt one.
    Per slide (``*_ms_per_slide``, best of the passes): a plain copy of its bytes, one
    ``torch.load``, and one store read of its contiguous rows (the cheapest LanceDB read: one
    range query, one batch, no conversion); ``single_stream_ceiling`` = torch.load / store read
    is the most any single-stream reader built on LanceDB could reach for one-slide bags.
(2) Write throughput, data generation excluded: ``write_vectors_per_s`` through keyed per-slide
    writes (``write_embeddings`` + ``stage.done`` per slide, one commit each, and the stage's
    closing index refresh: the path of ``pmx store import-h5`` and of any resumable per-slide
    writer); the .pt files are written afterwards, timed apart. ``embed_*`` measure the embed
    stage's path on the first ``--embed-slides`` slides, in a second store: each slide staged
    as an Arrow file (what ranks do while they embed), then published in commits of up to
    262,144 vectors (``embed_publish_vectors_per_s``; ``embed_vectors_per_s`` counts both).

    python bench/store_bench.py            # 200 slides x 2,000-10,000 vectors of 1024-d
    python bench/store_bench.py --quick    # about a minute
    python bench/store_bench.py --json     # last line: one JSON object

Targets on a 2-core CPU machine: ``ratio_vs_pt`` >= 1.0 and ``write_vectors_per_s`` >= 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from pmx.featurestore import open_store
from pmx.featurestore.bagloader import BagLoader
from pmx.featurestore.datasets import BagDataset, loader_kwargs

ENCODER = "bench-encoder"


def cpu_seconds() -> float:
    """CPU time of this process (all threads): robust to other jobs sharing the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_cohort(n_slides: int, low: int, high: int, seed: int) -> tuple[list[int], list[str]]:
    """Vectors per slide and the patient of each slide (patients have 1 or 2 slides)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(low, high + 1, size=n_slides).tolist()
    patients, p, i = [], 0, 0
    while i < n_slides:
        take = min(int(rng.integers(1, 3)), n_slides - i)
        patients += [f"P{p:04d}"] * take
        p, i = p + 1, i + take
    return sizes, patients


def slide_vectors(index: int, n: int, dim: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(1000 + index)
    return rng.standard_normal((n, dim), dtype=np.float32).astype(dtype)


def write_all(root: Path, sizes: list[int], patients: list[str], dim: int, dtype: str) -> dict:
    """Write every slide to the store (the embed-stage path), then, apart, to .pt files.

    The two writers run one after the other, with the store's dirty pages flushed in between
    (untimed): interleaved, each one's writeback competes for the disk (about 300 MB/s here,
    and the two together produce 5 GB) and throttles the other.
    """
    store = open_store(root / "store")
    pt_dir = root / "pt"
    pt_dir.mkdir(parents=True)
    store.upsert("patients", [{"patient_id": p, "time": 1.0, "event": True} for p in sorted(set(patients))])
    slides = [f"S{i:04d}" for i in range(len(sizes))]
    store_time = pt_time = 0.0
    os.sync()  # start with no one else's dirty pages waiting for the disk
    store_cpu = 0.0
    with store.stage("embed", fingerprint=ENCODER, params={"dim": dim}, units=slides) as stage:
        for i, slide in enumerate(stage.pending()):
            vectors = slide_vectors(i, sizes[i], dim, dtype)
            coords = np.stack([np.arange(sizes[i]) * 224, np.zeros(sizes[i], np.int64)], axis=1)
            start, cpu = time.perf_counter(), cpu_seconds()
            rows = store.write_embeddings(ENCODER, slide, vectors, coords=coords,
                                          patient_id=patients[i], tiler="grid")
            stage.done(slide, rows=rows)
            store_time += time.perf_counter() - start
            store_cpu += cpu_seconds() - cpu
        start, cpu = time.perf_counter(), cpu_seconds()
    store_time += time.perf_counter() - start  # stage exit: summary row + index refresh
    store_cpu += cpu_seconds() - cpu
    os.sync()
    for i, slide in enumerate(slides):
        vectors = slide_vectors(i, sizes[i], dim, dtype)
        start = time.perf_counter()
        torch.save(torch.from_numpy(vectors), pt_dir / f"{slide}.pt")
        pt_time += time.perf_counter() - start
    os.sync()
    total = sum(sizes)
    return {"write_vectors_per_s": total / store_time, "pt_write_vectors_per_s": total / pt_time,
            "write_seconds": store_time, "write_cpu_seconds": store_cpu}


def write_embed_path(root: Path, sizes: list[int], patients: list[str], dim: int,
                     dtype: str) -> dict:
    """The embed stage's write path (staging, then grouped commits) into a fresh store."""
    import pyarrow as pa

    from pmx.embedding.pipeline import _commit
    from pmx.embedding.staging import Staging, default_staging_uri
    from pmx.featurestore.convert import vectors_to_arrow
    from pmx.featurestore.schemas import VECTOR_DTYPES

    store = open_store(root / "embed-store")
    slides = [f"S{i:04d}" for i in range(len(sizes))]
    staging = Staging(default_staging_uri(store), "bench")
    stage_s = 0.0
    for i, (slide, n) in enumerate(zip(slides, sizes)):
        rows = pa.table({
            "encoder": pa.array([ENCODER] * n), "tiler": pa.array(["grid"] * n),
            "slide_id": pa.array([slide] * n), "patient_id": pa.array([patients[i]] * n),
            "level": pa.array(np.zeros(n, np.int32)), "x": pa.array(np.arange(n) * 224),
            "y": pa.array(np.zeros(n, np.int64)),
            "vector": vectors_to_arrow(slide_vectors(i, n, dim, dtype), VECTOR_DTYPES[dtype])})
        start = time.perf_counter()
        staging.write(slide, rows)
        stage_s += time.perf_counter() - start
    os.sync()
    start = time.perf_counter()
    with store.stage("embed", fingerprint=ENCODER, params={"dim": dim}, units=slides) as stage:
        _commit(store, stage, staging, [_Slide(s) for s in slides], ENCODER, "grid", 262_144)
    publish_s = time.perf_counter() - start
    total = sum(sizes)
    return {"embed_slides": len(slides), "embed_staging_vectors_per_s": total / stage_s,
            "embed_publish_vectors_per_s": total / publish_s,
            "embed_vectors_per_s": total / (stage_s + publish_s)}


class _Slide:
    def __init__(self, slide_id: str):
        self.slide_id = slide_id


def bag_order(patients: list[str], seed: int) -> tuple[list[str], dict[str, list[str]]]:
    slides_of: dict[str, list[str]] = {}
    for i, patient in enumerate(patients):
        slides_of.setdefault(patient, []).append(f"S{i:04d}")
    order = list(slides_of)
    np.random.default_rng(seed).shuffle(order)
    return order, slides_of


def read_store(root: Path, order: list[str]) -> tuple[float, int, float, float]:
    """(seconds, bytes, index seconds, CPU seconds). The bag index (one scan of the key
    columns, once per table version, as the .pt reader is handed its slide list) is built
    first and timed apart."""
    store = open_store(root / "store", consistent=False)
    start = time.perf_counter()
    store.bag_index(ENCODER)
    index_s = time.perf_counter() - start
    start, cpu, nbytes = time.perf_counter(), cpu_seconds(), 0
    for patient in order:
        bag = torch.from_numpy(store.read_bag(ENCODER, patient_id=patient))
        nbytes += bag.numel() * bag.element_size()
    return time.perf_counter() - start, nbytes, index_s, cpu_seconds() - cpu


def read_dataset(root: Path, order: list[str]) -> float:
    data = BagDataset(str(root / "store"), ENCODER, patient_ids=order, dtype=torch.float16)
    start = time.perf_counter()
    for index in range(len(data)):
        data[index]
    return time.perf_counter() - start


def read_loader(root: Path, order: list[str]) -> float:
    """The store's training reader: `BagLoader` over a `BagDataset`, 2 bags read ahead."""
    data = BagDataset(str(root / "store"), ENCODER, patient_ids=order, dtype=torch.float16,
                      with_survival=False)
    start = time.perf_counter()
    for _ in BagLoader(data, prefetch=2):
        pass
    return time.perf_counter() - start


def load_pt_bag(pt_dir: Path, slides: list[str]) -> torch.Tensor:
    parts = [torch.load(pt_dir / f"{s}.pt", weights_only=True) for s in slides]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def read_pt(root: Path, order: list[str], slides_of: dict[str, list[str]]) -> tuple[float, int]:
    start, nbytes = time.perf_counter(), 0
    for patient in order:
        bag = load_pt_bag(root / "pt", slides_of[patient])
        nbytes += bag.numel() * bag.element_size()
    return time.perf_counter() - start, nbytes


def read_pt_threads(root: Path, order: list[str], slides_of: dict[str, list[str]]) -> float:
    """.pt bags read ahead by 2 threads (torch.load releases the GIL while it copies)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        for _ in pool.map(lambda p: load_pt_bag(root / "pt", slides_of[p]), order):
            pass
    return time.perf_counter() - start


class PtBags(torch.utils.data.Dataset):
    """CLAM-style MIL dataset: a patient's bag from its per-slide .pt files."""

    def __init__(self, pt_dir: Path, order: list[str], slides_of: dict[str, list[str]]):
        self.pt_dir, self.order, self.slides_of = pt_dir, order, slides_of

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> torch.Tensor:
        return load_pt_bag(self.pt_dir, self.slides_of[self.order[index]])


def read_pt_workers(loader: torch.utils.data.DataLoader) -> float:
    """One epoch of .pt bags through persistent DataLoader workers (each bag crosses to this
    process through shared memory)."""
    start = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - start


def per_slide_costs(root: Path, slides_of: dict[str, list[str]]) -> dict[str, float]:
    """Milliseconds per slide: copy of its bytes, torch.load, and the cheapest store read."""
    store = open_store(root / "store", consistent=False)
    index = store.bag_index(ENCODER)
    slides = [s for patient_slides in slides_of.values() for s in patient_slides]
    times = {"copy": 0.0, "pt_load": 0.0, "store_read": 0.0}
    for slide in slides:
        start = time.perf_counter()
        vectors = torch.load(root / "pt" / f"{slide}.pt", weights_only=True)
        times["pt_load"] += time.perf_counter() - start
        array = vectors.numpy()
        start = time.perf_counter()
        array.copy()
        times["copy"] += time.perf_counter() - start
        start = time.perf_counter()
        store.read_bag(ENCODER, slide_id=slide, index=index)
        times["store_read"] += time.perf_counter() - start
    return {k: 1000 * v / len(slides) for k, v in times.items()}


def read_raw(root: Path, order: list[str], slides_of: dict[str, list[str]]) -> float:
    """The floor for any reader: the same .pt files read as plain bytes (one copy from the page
    cache into a fresh array per slide, no parsing, no concatenation)."""
    start = time.perf_counter()
    for patient in order:
        for slide in slides_of[patient]:
            np.fromfile(root / "pt" / f"{slide}.pt", dtype=np.uint8)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 slides x 1,000-4,000 vectors")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--slides", type=int, default=None)
    parser.add_argument("--min-vectors", type=int, default=None)
    parser.add_argument("--max-vectors", type=int, default=None)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embed-slides", type=int, default=60,
                        help="slides for the embed-stage write path (0: skip)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    n_slides = args.slides or (40 if args.quick else 200)
    low = args.min_vectors or (1000 if args.quick else 2000)
    high = args.max_vectors or (4000 if args.quick else 10000)

    root = Path(tempfile.mkdtemp(prefix="pmx-store-bench-", dir=args.dir))
    try:
        sizes, patients = make_cohort(n_slides, low, high, args.seed)
        log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
        log(f"writing {n_slides} slides, {sum(sizes):,} vectors of {args.dim}-d {args.dtype} ...")
        result: dict = {"slides": n_slides, "patients": len(set(patients)), "vectors": sum(sizes),
                        "dim": args.dim, "dtype": args.dtype}
        result.update(write_all(root, sizes, patients, args.dim, args.dtype))
        if args.embed_slides:
            k = min(args.embed_slides, n_slides)
            result.update(write_embed_path(root, sizes[:k], patients[:k], args.dim, args.dtype))
            shutil.rmtree(root / "embed-store", ignore_errors=True)
            os.sync()
        order, slides_of = bag_order(patients, args.seed)
        best = {k: float("inf") for k in ("store", "pt", "dataset", "index", "raw", "loader",
                                          "pt_threads", "pt_workers")}
        slide_costs = {k: float("inf") for k in ("copy", "pt_load", "store_read")}
        cpu_store = cpu_pt = float("inf")
        nbytes = 0
        workers = torch.utils.data.DataLoader(PtBags(root / "pt", order, slides_of), batch_size=None,
                                              **loader_kwargs(2))
        for rep in range(args.passes):
            for reader in (("pt", "store") if rep % 2 == 0 else ("store", "pt")):
                start = cpu_seconds()
                if reader == "pt":
                    t_pt, nbytes = read_pt(root, order, slides_of)
                    cpu_pt = min(cpu_pt, cpu_seconds() - start)
                else:
                    t_store, _, t_index, cpu = read_store(root, order)
                    cpu_store = min(cpu_store, cpu)
                    best["index"] = min(best["index"], t_index)
            best["store"], best["pt"] = min(best["store"], t_store), min(best["pt"], t_pt)
            best["dataset"] = min(best["dataset"], read_dataset(root, order))
            best["raw"] = min(best["raw"], read_raw(root, order, slides_of))
            best["loader"] = min(best["loader"], read_loader(root, order))
            best["pt_threads"] = min(best["pt_threads"], read_pt_threads(root, order, slides_of))
            best["pt_workers"] = min(best["pt_workers"], read_pt_workers(workers))
            for key, value in per_slide_costs(root, slides_of).items():
                slide_costs[key] = min(slide_costs[key], value)
            log(f"pass {rep + 1}: store {len(order) / t_store:.1f} patients/s, "
                f".pt {len(order) / t_pt:.1f} patients/s; loaders: store "
                f"{len(order) / best['loader']:.1f}, .pt threads "
                f"{len(order) / best['pt_threads']:.1f}, .pt workers "
                f"{len(order) / best['pt_workers']:.1f} patients/s")
        del workers
        best_store, best_pt, best_dataset = best["store"], best["pt"], best["dataset"]
        best_index, best_raw = best["index"], best["raw"]
        megabytes = nbytes / 2**20
        result.update({
            "store_patients_per_s": len(order) / best_store,
            "pt_patients_per_s": len(order) / best_pt,
            "ratio_vs_pt": best_pt / best_store,
            "store_mb_per_s": megabytes / best_store,
            "pt_mb_per_s": megabytes / best_pt,
            "dataset_patients_per_s": len(order) / best_dataset,
            "store_index_s": best_index,
            "raw_file_mb_per_s": megabytes / best_raw,
            "store_cpu_ms_per_patient": 1000 * cpu_store / len(order),
            "pt_cpu_ms_per_patient": 1000 * cpu_pt / len(order),
            "store_loader_patients_per_s": len(order) / best["loader"],
            "pt_threads_patients_per_s": len(order) / best["pt_threads"],
            "pt_workers_patients_per_s": len(order) / best["pt_workers"],
            "loader_ratio_vs_pt": min(best["pt_threads"], best["pt_workers"]) / best["loader"],
            "copy_ms_per_slide": slide_costs["copy"],
            "pt_load_ms_per_slide": slide_costs["pt_load"],
            "store_read_ms_per_slide": slide_costs["store_read"],
            "single_stream_ceiling": slide_costs["pt_load"] / slide_costs["store_read"],
            "store_bytes": sum(f.stat().st_size for f in (root / "store").rglob("*") if f.is_file()),
            "pt_bytes": sum(f.stat().st_size for f in (root / "pt").iterdir()),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "quick": args.quick,
        })
        result["targets_met"] = bool(result["ratio_vs_pt"] >= 1.0
                                     and result["write_vectors_per_s"] >= 100_000)
        if args.json:
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
        else:
            for key, value in result.items():
                print(f"{key:>24}: {value:,.1f}" if isinstance(value, float) else f"{key:>24}: {value}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
