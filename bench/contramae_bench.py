"""ContraMAE pretraining throughput: compute-only samples/s of the model step.

What one step does (as pretraining would with the data already resident on the device):
regions held as uint8 ``[N, 3, R, R]`` on the device -> pick a batch -> ``RegionAugment``
(random resized crop + flip + ImageNet normalisation, batched, on the device) -> mask 1 omics
token and 75% of patches -> encoder / decoder -> PGC + GR + PR -> backward -> AdamW step.
Precision: bf16 autocast on CUDA, fp32 on CPU.

Reference (issue 10): the authors' model does about 1,280 samples/s on one H100 at batch 100
with fp16 AMP (3.96 TFLOP per 100-sample step); the target for pmx end to end is >= 5,000/s.
pmx's model does 2.99 TFLOP per 100-sample step (it embeds only the visible patches and
predicts pixels only for the masked ones; the FLOPs are counted here with torch's
FlopCounterMode on the meta device).

Not yet measured here: the end-to-end rate with regions read from the feature store (needs the
wired ``contramae`` run); this script reports the compute-only rate the data path must match.

    python bench/contramae_bench.py --device cuda            # paper preset, batch 100
    python bench/contramae_bench.py --device cuda --compile  # torch.compile the model step
    python bench/contramae_bench.py --quick                  # tiny preset on the CPU, ~1 minute
    python bench/contramae_bench.py --json                   # last line: one JSON object
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time

import torch

from pmx_contramae import ContraMAEMethod


def flops_per_sample(method: ContraMAEMethod, region: int) -> float:
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=None, help="method preset (default: paper; tiny with --quick)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--batch", type=int, default=None, help="samples per step (default: the preset's pretrain.batch_size)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    parser.add_argument("--regions", type=int, default=None, help="distinct regions held on the device")
    parser.add_argument("--region-size", type=int, default=None, help="stored region edge (default: data.region_size)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder and decoder")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="tiny preset on the CPU, about a minute")
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

    torch.manual_seed(0)
    model = method.build_pretrain_model().to(device).train()
    if args.compile:
        model.backbone = torch.compile(model.backbone)
        model.decoder = torch.compile(model.decoder)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain.lr, betas=tuple(cfg.pretrain.betas),
                                  weight_decay=cfg.pretrain.weight_decay, fused=device.startswith("cuda"))
    regions = torch.randint(0, 256, (n_regions, 3, region, region), dtype=torch.uint8, device=device)
    omics = torch.randn(n_regions, cfg.model.n_omics, cfg.model.omics_dim, device=device)
    cuda = device.startswith("cuda")
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats()

    def step() -> dict[str, float]:
        index = torch.randint(0, n_regions, (batch,), device=device)
        with autocast():
            losses = model.losses({"image": regions[index], "omics": omics[index]})
            total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return losses

    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        losses = step()
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    flops = flops_per_sample(method, region)
    result = {
        "bench": "contramae_pretrain_step",
        "preset": preset,
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "batch": batch,
        "region": region,
        "image_size": cfg.model.image_size,
        "compile": args.compile,
        "precision": "bf16-autocast" if cuda else "fp32",
        "step_s_median": round(median, 4),
        "samples_per_s": round(batch / median, 1),
        "gflop_per_sample": round(flops / 1e9, 2),
        "achieved_tflops": round(flops * batch / median / 1e12, 2),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "losses": {k: round(float(v.detach()), 4) for k, v in losses.items()},
        "data_path": "compute-only (regions resident on the device); store-read rate not measured yet",
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return result


if __name__ == "__main__":
    main()
