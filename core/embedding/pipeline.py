"""The embed stage: tiles -> a frozen tile encoder -> vectors in the store, on one or many ranks.

One call of :func:`embed` (every rank runs it, under torchrun or alone):

1. plan: the tiling's tiles per slide (store ``tiles`` table), the stage key (encoder
   fingerprint + tiler + pixel source + precision), and which slides are still to do: not
   done in the store's ``artifacts`` and not staged by an earlier, interrupted run;
2. shard: slides split across ranks by tile count; each rank reads its slides' tiles in
   DataLoader workers, runs the encoder (bf16 autocast and channels_last on GPU, inference
   mode, optional ``torch.compile`` / TensorRT) and stages each finished slide as a fragment;
3. commit: when every rank is done, rank 0 publishes all staged fragments to the encoder's
   embeddings table (keyed replaces, so nothing duplicates) and marks the slides done.

Batches never mix slides, so a slide's vectors do not depend on how slides were sharded: the
result of N ranks equals the result of one.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import torch

from ..errors import ConfigError, DataError, SlidesFailed
from ..ranks import DistEnv, env_from_torchrun
from ..encoders.base import TileEncoder
from .config import EmbedConfig
from .runtime import (
    autocast,
    broadcast,
    gather,
    init_process_group,
    optimise_module,
    resolve_device,
    resolve_precision,
    torch_threads,
)
from .staging import Staging, chunks, default_staging_uri
from .tiles import (
    BatchSpec,
    SlideWork,
    TileBatches,
    load_tiles,
    make_batches,
    make_loader,
    plan_slides,
    shard_slides,
)

log = logging.getLogger("pmx.embedding")

STAGE_NAME = "embed"

#: what a slide path lookup returns: slide id -> (file, mpp override or None)
SlidePaths = Mapping[str, tuple[str, float | None]]


@dataclass
class EmbedSummary:
    """What one embed run did (the same on every rank after the commit)."""

    encoder: str
    fingerprint: str
    table: str
    tiler: str
    stage_key: str
    source: str
    device: str
    precision: str
    world: int
    slides: int = 0
    cached: int = 0
    computed: int = 0
    committed: int = 0
    tiles: int = 0
    seconds: float = 0.0
    compute_seconds: float = 0.0
    startup_seconds: float = 0.0
    startup_tiles: int = 0
    commit_seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def tiles_per_s(self) -> float:
        """Tiles per second of the compute phase (reading, decoding, encoding, staging)."""
        return self.tiles / self.compute_seconds if self.compute_seconds > 0 else 0.0

    @property
    def steady_tiles_per_s(self) -> float:
        """The same without the one-off start (worker spawn, first batch, compilation)."""
        steady = self.compute_seconds - self.startup_seconds
        tiles = self.tiles - self.startup_tiles
        return tiles / steady if steady > 0 and tiles > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["tiles_per_s"] = round(self.tiles_per_s, 2)
        payload["steady_tiles_per_s"] = round(self.steady_tiles_per_s, 2)
        for key in ("seconds", "compute_seconds", "startup_seconds", "commit_seconds"):
            payload[key] = round(payload[key], 3)
        return payload


class EmbeddingFailed(SlidesFailed):
    """Some slides could not be read; the others are committed. ``summary`` (an
    :class:`EmbedSummary`) says which."""

    verb = "embedded"


# -- planning ------------------------------------------------------------------------------------
def tilings(store: Any) -> list[dict[str, Any]]:
    """Tilings the store knows: tiler fingerprint, tiler name (when recorded) and status."""
    found: dict[str, dict[str, Any]] = {}
    if store.has_table("artifacts"):
        rows = store.read_arrow("artifacts", where="stage = 'tile' AND unit = '*'",
                                columns=["fingerprint", "params", "status"]).to_pylist()
        for row in rows:
            try:
                name = json.loads(row["params"] or "{}").get("tiler")
            except (ValueError, AttributeError):
                name = None
            found[row["fingerprint"]] = {"fingerprint": row["fingerprint"], "name": name,
                                         "status": row["status"]}
    if not found and store.has_table("tiles"):
        import pyarrow.compute as pc

        column = store.read_arrow("tiles", columns=["tiler"]).column("tiler")
        for fp in pc.unique(column).to_pylist():
            found[fp] = {"fingerprint": fp, "name": None, "status": None}
    return sorted(found.values(), key=lambda t: t["fingerprint"])


def resolve_tiler(store: Any, wanted: str) -> str:
    """A tiler fingerprint from a fingerprint, a tiler name, or nothing (the only tiling)."""
    known = tilings(store)
    listing = "; ".join(f"{t['name'] or '?'} [{t['fingerprint']}]" for t in known) or "(none)"
    if not known:
        raise DataError(f"store {store.uri} has no tiles yet; run `pmx tile --tiler NAME "
                        f"--store {store.uri}` first")
    if not wanted:
        if len(known) == 1:
            return known[0]["fingerprint"]
        raise ConfigError(f"store {store.uri} holds several tilings ({listing}); choose one "
                          "with --tiler FINGERPRINT or --tiler NAME")
    fingerprints = {t["fingerprint"] for t in known}
    if wanted in fingerprints or wanted.removesuffix(".sub") in fingerprints:
        return wanted
    by_name = [t["fingerprint"] for t in known if t["name"] == wanted]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise ConfigError(f"tiler name {wanted!r} matches several tilings ({listing}); give the "
                          "fingerprint with --tiler")
    raise ConfigError(f"no tiling {wanted!r} in store {store.uri}; tilings: {listing}")


def stage_params(encoder: TileEncoder, tiler: str, source: str, precision: str) -> dict[str, Any]:
    """Everything that decides the vectors (the stage key hashes it; the lineage records it)."""
    lineage = {k: v for k, v in encoder.lineage().items()
               if k not in ("weights", "weights_source", "fingerprint")}
    return {"encoder": lineage, "tiler": tiler, "source": source, "precision": precision}


def slide_paths_from_store(store: Any) -> dict[str, tuple[str, float | None]]:
    """slide id -> (path, mpp) from the store's slides table (empty when it has none)."""
    if not store.has_table("slides"):
        return {}
    table = store.read_arrow("slides", columns=["slide_id", "path", "mpp"])
    return {s: (p, m) for s, p, m in zip(table.column("slide_id").to_pylist(),
                                          table.column("path").to_pylist(),
                                          table.column("mpp").to_pylist()) if p}


# -- the stage -----------------------------------------------------------------------------------
def embed(store: Any, encoder: TileEncoder, config: EmbedConfig | Mapping[str, Any] | None = None,
          *, slide_paths: SlidePaths | None = None, force: bool = False, progress: bool = True,
          ranks: DistEnv | None = None) -> EmbedSummary:
    """Embed one tiling's tiles with ``encoder`` into ``store`` (see the module docstring).

    ``slide_paths`` adds to / overrides the store's slides table (slide id -> (file, mpp)).
    Call it on every rank when launched by torchrun; the process group is created (gloo) and
    torn down here unless the caller made one.
    """
    cfg = config if isinstance(config, EmbedConfig) else EmbedConfig.model_validate(dict(config or {}))
    if not isinstance(encoder, TileEncoder):
        raise ConfigError(f"{type(encoder).__name__} is not a tile encoder (pmx.encoders."
                          "TileEncoder): it cannot embed tiles")
    ranks = ranks or env_from_torchrun()
    created = init_process_group(ranks, cfg.dist_timeout_min)
    try:
        with torch_threads(cfg.threads):
            return _embed(store, encoder, cfg, slide_paths, force, progress, ranks)
    finally:
        if created:
            import torch.distributed as dist

            dist.destroy_process_group()


def _embed(store: Any, encoder: TileEncoder, cfg: EmbedConfig, slide_paths: SlidePaths | None,
           force: bool, progress: bool, ranks: DistEnv) -> EmbedSummary:
    from pmx.featurestore import schemas, stage_key

    start = time.perf_counter()
    device = resolve_device(cfg.device, ranks)
    precision = resolve_precision(cfg.precision, device)
    fingerprint = encoder.fingerprint  # resolves weights: a missing file fails on every rank
    tiler = resolve_tiler(store, cfg.tiler)
    tiles, tiles_version = load_tiles(store, tiler, cfg.slides or None)
    if cfg.slides:
        absent = sorted(set(cfg.slides) - set(tiles.column("slide_id").to_pylist()))
        if absent:
            raise DataError(f"slide(s) {', '.join(absent[:5])} have no tiles of tiling {tiler}")
    paths = slide_paths_from_store(store) if cfg.source != "pixels" else {}
    paths.update(slide_paths or {})
    slides, source = plan_slides(tiles, paths, cfg.source)
    params = stage_params(encoder, tiler, source, precision)
    key = stage_key(STAGE_NAME, fingerprint, params, [tiler])
    summary = EmbedSummary(
        encoder=encoder.name, fingerprint=fingerprint,
        table=schemas.embeddings_table_name(fingerprint), tiler=tiler, stage_key=key,
        source=source, device=str(device), precision=precision, world=ranks.world_size,
        slides=len(slides), warnings=list(encoder.lineage()["warnings"]))
    staging = Staging(cfg.staging or default_staging_uri(store), key, store.storage_options)
    ids = [s.slide_id for s in slides]

    stage = None
    error: BaseException | None = None
    try:
        if ranks.is_main:
            stage = store.stage(STAGE_NAME, fingerprint=fingerprint, params=params,
                                inputs=[tiler], units=ids, force=force, logger=log)
            stage.__enter__()
            if force:
                staging.clear()
            staged = staging.staged() if not stage.cached else set()
            todo = [i for i, s in enumerate(slides)
                    if not stage.is_done(s.slide_id) and s.slide_id not in staged]
            plan = {"todo": todo, "cached": sum(stage.is_done(s) for s in ids),
                    "staged": sorted(staged & set(ids))}
            if plan["staged"]:
                log.info("embed: %d slide(s) staged by an earlier run are published without "
                         "recomputing", len(plan["staged"]))
        else:
            plan = None
        plan = broadcast(ranks, plan)
        summary.cached = plan["cached"]
        shards = shard_slides(slides, plan["todo"], ranks.world_size)
        mine = shards[ranks.rank]
        log.info("embed %s [%s] rank %d/%d: %d slide(s), %d tile(s) on %s (%s, %s source)",
                 encoder.name, fingerprint, ranks.rank, ranks.world_size, len(mine),
                 sum(slides[i].n for i in mine), device, precision, source)

        compute_start = time.perf_counter()
        done, failed, n_tiles, (startup, startup_tiles) = _compute(
            store, encoder, cfg, slides, mine, source, tiles_version, staging, device,
            precision, fingerprint, tiler, progress, ranks)
        compute_seconds = time.perf_counter() - compute_start
        reports = gather(ranks, {"done": done, "failed": failed, "tiles": n_tiles,
                                 "seconds": compute_seconds, "startup": startup,
                                 "startup_tiles": startup_tiles})
        for report in reports:
            summary.failed.update(report["failed"])
            summary.computed += len(report["done"])
            summary.tiles += report["tiles"]
        slowest = max(reports, key=lambda r: r["seconds"])
        summary.compute_seconds, summary.startup_seconds = slowest["seconds"], slowest["startup"]
        summary.startup_tiles = sum(r["startup_tiles"] for r in reports)
        commit_start = time.perf_counter()

        outcome = None
        if ranks.is_main:
            assert stage is not None
            try:
                outcome = {"committed": _commit(store, stage, staging, slides, fingerprint,
                                                tiler, cfg.commit_rows)}
            except Exception as exc:  # noqa: BLE001 - re-raised on every rank below
                outcome = {"error": f"{type(exc).__name__}: {exc}"}
                error = exc
        outcome = broadcast(ranks, outcome)
        if "error" in outcome:
            if error is not None:
                raise error
            raise DataError(f"the commit on rank 0 failed: {outcome['error']}")
        summary.committed = outcome["committed"]
        summary.commit_seconds = time.perf_counter() - commit_start
    except BaseException as exc:
        error = exc
        raise
    finally:
        if stage is not None:
            stage.__exit__(type(error) if error else None, error, None)
        summary.seconds = time.perf_counter() - start
    if summary.failed:
        raise EmbeddingFailed.of(summary.failed, len(slides), summary)
    return summary


# -- the compute loop ------------------------------------------------------------------------------
class _Collector:
    """Assembles each slide's vectors from its batches and stages the slide when complete."""

    def __init__(self, slides: Sequence[SlideWork], batches: Sequence[BatchSpec],
                 staging: Staging, fingerprint: str, tiler: str, dtype: str, on_slide: Callable[[int], None]):
        self.slides, self.batches, self.staging = slides, batches, staging
        self.fingerprint, self.tiler, self.dtype = fingerprint, tiler, dtype
        self.on_slide = on_slide
        self.parts: dict[int, list[tuple[int, np.ndarray]]] = {}
        self.received: dict[int, int] = {}
        self.failed: dict[str, str] = {}
        self.done: list[str] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pmx-stage")
        self._writes: list[Future[None]] = []

    def is_failed(self, slide: int) -> bool:
        return self.slides[slide].slide_id in self.failed

    def fail(self, slide: int, message: str) -> None:
        work = self.slides[slide]
        if work.slide_id not in self.failed:
            log.warning("slide %s failed: %s", work.slide_id, message)
            self.failed[work.slide_id] = message
        self.parts.pop(slide, None)

    def add(self, batch: int, vectors: np.ndarray) -> None:
        spec = self.batches[batch]
        if self.is_failed(spec.slide):
            return
        self.parts.setdefault(spec.slide, []).append((spec.start, vectors))
        self.received[spec.slide] = self.received.get(spec.slide, 0) + spec.n
        if self.received[spec.slide] == self.slides[spec.slide].n:
            parts = sorted(self.parts.pop(spec.slide), key=lambda p: p[0])
            matrix = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
            rows = embedding_rows(self.slides[spec.slide], matrix, self.fingerprint, self.tiler,
                                  self.dtype)
            slide_id = self.slides[spec.slide].slide_id
            self._writes.append(self._writer.submit(self.staging.write, slide_id, rows))
            self.done.append(slide_id)
            self.on_slide(spec.slide)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        for future in self._writes:
            future.result()  # a failed staging write is an error of the run


def embedding_rows(work: SlideWork, vectors: np.ndarray, fingerprint: str, tiler: str,
                   dtype: str) -> pa.Table:
    """One slide's rows in the embeddings table schema."""
    from pmx.featurestore import schemas
    from pmx.featurestore.convert import vectors_to_arrow

    n = work.n
    if vectors.shape[0] != n:
        raise RuntimeError(f"slide {work.slide_id}: {vectors.shape[0]} vectors for {n} tiles")
    schema = schemas.embeddings_schema(vectors.shape[1], dtype)
    return pa.Table.from_arrays([
        pa.array([fingerprint] * n, pa.string()),
        pa.array([tiler] * n, pa.string()),
        pa.array([work.slide_id] * n, pa.string()),
        pa.array([work.patient_id] * n, pa.string()),
        pa.array(work.level, pa.int32()),
        pa.array(work.x, pa.int64()),
        pa.array(work.y, pa.int64()),
        vectors_to_arrow(vectors, schemas.VECTOR_DTYPES[dtype]),
    ], schema=schema)


def _auto_workers(device: torch.device) -> int:
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device.type == "cuda":
        per_gpu = max(1, cpus // max(1, torch.cuda.device_count()))
        return max(1, min(16, per_gpu - 1))
    return 1  # on CPU the encoder is the bottleneck: one reader hides the data path


def _compute(store: Any, encoder: TileEncoder, cfg: EmbedConfig, slides: Sequence[SlideWork],
             mine: Sequence[int], source: str, tiles_version: int, staging: Staging,
             device: torch.device, precision: str, fingerprint: str, tiler: str, progress: bool,
             ranks: DistEnv) -> tuple[list[str], dict[str, str], int, tuple[float, int]]:
    """Embed this rank's slides: (done, failed, tiles, (start-up seconds, start-up tiles)).

    The start-up lasts until every worker has delivered its first batch and it has run
    (worker spawn, first reads, autotuning or compilation)."""
    if not mine:
        return [], {}, 0, (0.0, 0)
    start = time.perf_counter()
    startup, startup_tiles, batches_seen = 0.0, 0, 0
    from tqdm.auto import tqdm

    cuda = device.type == "cuda"
    batch_size = cfg.batch_size or (256 if cuda else 32)
    batches = make_batches(slides, mine, batch_size)
    workers = cfg.num_workers if cfg.num_workers >= 0 else _auto_workers(device)
    dataset = TileBatches(slides, batches, source, store=store, tiles_version=tiles_version)
    loader = make_loader(dataset, num_workers=min(workers, len(batches)),
                         prefetch_factor=cfg.prefetch_factor, pin_memory=cfg.pin_memory and cuda)
    warm_batches = max(1, min(loader.num_workers, len(batches)))
    total = sum(slides[i].n for i in mine)
    desc = f"embed {encoder.name}" + (f" [rank {ranks.rank}]" if ranks.is_distributed else "")
    bar = tqdm(total=total, unit="tiles", unit_scale=True, desc=desc, leave=False,
               disable=not progress, position=ranks.local_rank if ranks.is_distributed else None)
    slides_done = [0]

    def on_slide(_: int) -> None:
        slides_done[0] += 1
        bar.set_postfix(slides=f"{slides_done[0]}/{len(mine)}", refresh=False)

    collector = _Collector(slides, batches, staging, fingerprint, tiler, encoder.vector_dtype,
                           on_slide)
    module = encoder.module
    pad = cfg.compile or cfg.tensorrt  # static shapes for compiled graphs / engines
    out_dtype = torch.float16 if encoder.vector_dtype == "float16" else torch.float32
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None
    in_flight: deque[tuple[int, int, torch.Tensor, Any]] = deque()
    n_tiles = 0

    def finish(entry: tuple[int, int, torch.Tensor, Any]) -> None:
        index, n, host, event = entry
        if event is not None:
            event.synchronize()
        collector.add(index, host.numpy()[:n])
        bar.update(n)

    try:
        with torch.inference_mode():
            for item in loader:
                index = item["index"]
                spec = batches[index]
                if "error" in item:
                    collector.fail(spec.slide, item["error"])
                    bar.update(spec.n)
                    continue
                if collector.is_failed(spec.slide):
                    bar.update(spec.n)
                    continue
                tiles = item["tiles"].to(device, non_blocking=True)
                n = tiles.shape[0]
                if pad and n < batch_size:
                    tiles = torch.cat([tiles, tiles[-1:].expand(batch_size - n, *tiles.shape[1:])])
                x = encoder.preprocess(tiles)
                if not cfg.channels_last:
                    x = x.contiguous()
                if forward is None:
                    forward = optimise_module(
                        module, device=device, precision=precision,
                        channels_last=cfg.channels_last, compile=cfg.compile,
                        compile_mode=cfg.compile_mode, tensorrt=cfg.tensorrt, example=lambda: x)
                with autocast(device, precision):
                    out = forward(x)
                out = out.to(out_dtype)
                if batches_seen < warm_batches:  # until every worker delivered once
                    batches_seen += 1
                    startup_tiles += n
                    if batches_seen == warm_batches:
                        if cuda:
                            torch.cuda.synchronize(device)
                        startup = time.perf_counter() - start
                if cuda:
                    host = torch.empty(out.shape, dtype=out_dtype, pin_memory=True)
                    host.copy_(out, non_blocking=True)
                    event = torch.cuda.Event()
                    event.record()
                    in_flight.append((index, n, host, event))
                    while len(in_flight) > 2:  # keep the GPU queue fed, collect two steps late
                        finish(in_flight.popleft())
                else:
                    finish((index, n, out, None))
                n_tiles += n
            while in_flight:
                finish(in_flight.popleft())
    finally:
        bar.close()
        collector.close()
    return collector.done, collector.failed, n_tiles, (startup, startup_tiles)


# -- the commit ----------------------------------------------------------------------------------
def _commit(store: Any, stage: Any, staging: Staging, slides: Sequence[SlideWork],
            fingerprint: str, tiler: str, commit_rows: int) -> int:
    """Publish staged fragments of slides not yet done; returns the number of slides."""
    from pmx.featurestore import schemas, sql_in, sql_literal

    if stage.cached:
        return 0
    staged = staging.staged()
    ids = [s.slide_id for s in slides if s.slide_id in staged and not stage.is_done(s.slide_id)]
    physical = schemas.embeddings_table_name(fingerprint)
    committed = 0
    # removing a published file frees its pages (~10 ms for 12 MB): done beside the next commit
    with ThreadPoolExecutor(1, thread_name_prefix="pmx-staging-rm") as removals:
        for group, rows in chunks(staging, ids, commit_rows):
            where = f"tiler = {sql_literal(tiler)} AND {sql_in('slide_id', group)}"
            _forget_other_precisions(store, stage, group, tiler)
            store.replace(physical, rows, where=where)
            counts = _counts(rows)
            stage.done_many({slide_id: counts.get(slide_id, 0) for slide_id in group})
            for slide_id in group:
                removals.submit(staging.remove, slide_id)
            committed += len(group)
            log.info("embed: published %d slide(s), %d vector(s) to %s", len(group),
                     rows.num_rows, physical)
    staging.tidy()
    return committed


def _counts(rows: pa.Table) -> dict[str, int]:
    import pyarrow.compute as pc

    counts = pc.value_counts(rows.column("slide_id")).to_pylist()
    return {c["values"]: int(c["counts"]) for c in counts}


def _forget_other_precisions(store: Any, stage: Any, slide_ids: Sequence[str], tiler: str) -> None:
    """The table keeps one set of vectors per (encoder, tiler, slide): when this stage (say
    fp32) rewrites slides that another embed stage of the same encoder and tiling (say bf16)
    had done, that stage's records for them are dropped, so its cache cannot claim them."""
    from pmx.featurestore import sql_in, sql_literal

    where = (f"stage = {sql_literal(STAGE_NAME)} AND fingerprint = {sql_literal(stage.fingerprint)}"
             f" AND key != {sql_literal(stage.key)} AND {sql_in('unit', slide_ids)}")
    rows = store.read_arrow("artifacts", where=where, columns=["key", "unit", "inputs"]).to_pylist()
    stale: dict[str, list[str]] = {}
    for row in rows:
        if tiler in (row["inputs"] or []):
            stale.setdefault(row["key"], []).append(row["unit"])
    for key, units in stale.items():
        store.delete("artifacts", f"key = {sql_literal(key)} AND {sql_in('unit', units)}")
        log.info("embed: %d slide(s) of embed stage %s are rewritten with other settings; its "
                 "records for them are dropped", len(units), key)
