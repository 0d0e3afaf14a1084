"""ContraMAE pretraining throughput: end to end from the feature store, next to compute only.

Two rates, same model step, same device, same batch:

* **compute only** (``compute_samples_per_s``): random uint8 regions already resident on the
  device -> pick a batch -> ``RegionAugment`` (random resized crop + flip + ImageNet
  normalisation, batched, on the device) -> mask 1 omics token and 75% of patches -> encoder /
  decoder -> PGC + GR + PR -> backward -> AdamW step.
* **from the store** (``store_samples_per_s``): the run's own data path. The ``contramae`` run's
  cached region stage (``pmx_contramae.data.load_cohort_data``: ingest + representative-region
  tiles in the feature store, JPEG/PNG pixels) is read back and decoded into the device-resident
  uint8 bank (nvJPEG on CUDA), then the same step draws its batches through
  ``pmx_contramae.bank.BankLoader`` (seeded epoch order, index gather on the device).
  ``store_read_s`` is the one-off read + decode of every region (reported separately; an epoch
  reads nothing from the store), and ``store_epoch_samples_per_s`` charges it to one epoch.

Precision: bf16 autocast on CUDA, fp32 on CPU. Without ``--store`` the bench generates a small
demo cohort in a temporary folder and runs the region stage there (``--demo-patients``; the
demo slides must hold one region: the paper preset's 1024 px at 5x needs 4096 px slides, slow to
render: give ``--store`` of a cohort tiled by a ``contramae --preset paper`` run instead).

Reference (issue 10): the authors' model does about 1,280 samples/s on one H100 at batch 100
with fp16 AMP (3.96 TFLOP per 100-sample step); the target for pmx end to end is >= 5,000/s.
pmx's model does 2.99 TFLOP per 100-sample step (it embeds only the visible patches and
predicts pixels only for the masked ones; FLOPs counted with torch's FlopCounterMode on meta).

    python bench/contramae_bench.py --device cuda            # paper preset, batch 100
    python bench/contramae_bench.py --device cuda --compile  # torch.compile the model step
    python bench/contramae_bench.py --quick                  # tiny preset on the CPU, ~1-2 minutes
    python bench/contramae_bench.py --store .pmx/store       # regions of an earlier run's store
    python bench/contramae_bench.py --json                   # last line: one JSON object
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from pmx_contramae import ContraMAEMethod


def flops_per_sample(method: ContraMAEMethod) -> float:
    """Forward + backward FLOPs of one pretraining sample (augmentation excluded), on meta."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = method.config.model
    with torch.device("meta"):
        model = method.build_pretrain_model(with_augment=False)
        batch = {"image": torch.randn(2, 3, cfg.image_size, cfg.image_size),
                 "omics": torch.randn(2, cfg.n_omics, cfg.omics_dim)}
    counter = FlopCounterMode(display=False)
    with counter:
        sum(model.losses(batch).values()).backward()
    return counter.get_total_flops() / 2


def timed_steps(step: Callable[[dict], dict], batches: Iterator[dict], *, warmup: int, steps: int,
                sync: Callable[[], None]) -> tuple[float, dict]:
    """Median seconds per step (the batch fetch included) and the last losses."""
    losses: dict = {}
    for _ in range(warmup):
        losses = step(next(batches))
    sync()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        losses = step(next(batches))
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), losses


def random_batches(regions: torch.Tensor, omics: torch.Tensor, batch: int) -> Iterator[dict]:
    while True:
        index = torch.randint(0, regions.shape[0], (batch,), device=regions.device)
        yield {"image": regions[index], "omics": omics[index]}


def store_bank(method: ContraMAEMethod, store: str | None, device: str, patients: int, seed: int,
               workdir: Path) -> tuple[Any, dict[str, Any]]:
    """The run's region stage (cached in the store) read back into a device bank; timings."""
    import math

    import pmx
    from pmx.featurestore import open_store
    from pmx_contramae.bank import RegionBank
    from pmx_contramae.data import load_cohort_data, region_stage

    config = method.config
    if store is None:  # a small demo cohort whose slides (height = 3/4 width) hold one region
        extent = config.data.region_size * 20.0 / config.data.magnification
        slide = max(1024, int(math.ceil(extent * 4 / 3 / 256)) * 256)
        config = config.model_copy(update={"demo": config.demo.model_copy(
            update={"patients": patients, "slide_size": slide})})
    context = pmx.RunContext(method="contramae", preset="bench", store=store or str(workdir / "store"),
                             out_dir=workdir, seed=seed, device=device, demo=store is None)
    start = time.perf_counter()
    data = load_cohort_data(context, config, progress=False, device="cpu")  # ingest + tile, or cache hits
    prepare = time.perf_counter() - start
    del data
    lineage: dict[str, Any] = {}
    start = time.perf_counter()  # the run's region stage, cached: store rows -> decoded device bank
    region_of, images, _ = region_stage(context, config.data, open_store(context.store), None, lineage,
                                        progress=False, device=device)
    images = images.index_select(0, torch.as_tensor(sorted(region_of.values()), device=images.device))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    read = time.perf_counter() - start
    n = images.shape[0]
    cfg = config.model
    bank = RegionBank(time=torch.ones(n, dtype=torch.float64, device=device),
                      event=torch.ones(n, dtype=torch.int64, device=device), images=images,
                      omics=torch.randn(n, cfg.n_omics, cfg.omics_dim, device=device))
    info = {"store": context.store, "regions": n, "store_region": list(images.shape[1:]),
            "store_prepare_s": round(prepare, 2), "store_read_s": round(read, 3),
            "store_read_regions_per_s": round(n / read, 1),
            "store_stage_cached": lineage["stages"]["tile"]["computed"] == 0}
    return bank, info


def loader_batches(bank: Any, batch: int, seed: int) -> Iterator[dict]:
    from pmx_contramae.bank import BankLoader

    loader = BankLoader(bank, range(len(bank)), batch_size=batch, train=True, seed=seed)
    epoch = 0
    while True:
        loader.sampler.set_epoch(epoch)
        for item in loader:
            yield {"image": item["image"], "omics": item["omics"]}
        epoch += 1


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=None, help="method preset (default: paper; tiny with --quick)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--batch", type=int, default=None, help="samples per step (default: the preset's pretrain.batch_size)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    parser.add_argument("--regions", type=int, default=None, help="distinct random regions held on the device (compute only)")
    parser.add_argument("--region-size", type=int, default=None, help="random region edge (default: data.region_size)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder and decoder")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--store", default=None, help="feature store holding this preset's regions (default: a temporary demo store)")
    parser.add_argument("--demo-patients", type=int, default=None, help="patients of the temporary demo cohort (default 32, or 2 x batch)")
    parser.add_argument("--no-store", action="store_true", help="compute-only rate alone")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny preset on the CPU, a minute or two")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() and not args.quick else "cpu"
    preset = args.preset or ("tiny" if args.quick else "paper")
    method = ContraMAEMethod(ContraMAEMethod.resolve_config(preset))
    cfg = method.config
    batch = args.batch or cfg.pretrain.batch_size
    steps = args.steps or (10 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    region = args.region_size or cfg.data.region_size
    n_regions = args.regions or 2 * batch

    torch.manual_seed(args.seed)
    model = method.build_pretrain_model().to(device).train()
    if args.compile:
        model.backbone = torch.compile(model.backbone)
        model.decoder = torch.compile(model.decoder)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain.lr, betas=tuple(cfg.pretrain.betas),
                                  weight_decay=cfg.pretrain.weight_decay, fused=device.startswith("cuda"))
    cuda = device.startswith("cuda")
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats()

    def step(batch_: dict) -> dict:
        with autocast():
            losses = model.losses(batch_)
            total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return losses

    regions = torch.randint(0, 256, (n_regions, 3, region, region), dtype=torch.uint8, device=device)
    omics = torch.randn(n_regions, cfg.model.n_omics, cfg.model.omics_dim, device=device)
    compute_s, losses = timed_steps(step, random_batches(regions, omics, batch), warmup=warmup, steps=steps, sync=sync)
    del regions, omics

    store_info: dict[str, Any] = {}
    store_s = None
    if not args.no_store:
        with tempfile.TemporaryDirectory(prefix="contramae-bench-") as tmp:
            patients = args.demo_patients or max(32, 2 * batch)
            bank, store_info = store_bank(method, args.store, device, patients, args.seed, Path(tmp))
            store_s, losses = timed_steps(step, loader_batches(bank, batch, args.seed), warmup=warmup, steps=steps,
                                          sync=sync)
            del bank

    flops = flops_per_sample(method)
    result: dict[str, Any] = {
        "bench": "contramae_pretrain_step",
        "preset": preset,
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "batch": batch,
        "region": region,
        "image_size": cfg.model.image_size,
        "compile": args.compile,
        "precision": "bf16-autocast" if cuda else "fp32",
        "compute_step_s_median": round(compute_s, 4),
        "compute_samples_per_s": round(batch / compute_s, 1),
        "samples_per_s": round(batch / compute_s, 1),
        "gflop_per_sample": round(flops / 1e9, 2),
        "achieved_tflops": round(flops * batch / compute_s / 1e12, 2),
    }
    if store_s is not None:
        n = store_info["regions"]
        result.update({
            "store_step_s_median": round(store_s, 4),
            "store_samples_per_s": round(batch / store_s, 1),
            "store_vs_compute": round(compute_s / store_s, 3),
            "store_epoch_samples_per_s": round(n / (store_info["store_read_s"] + n / batch * store_s), 1),
            **store_info,
        })
    result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None
    result["losses"] = {k: round(float(v.detach()), 4) for k, v in losses.items()}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return result


if __name__ == "__main__":
    main()
