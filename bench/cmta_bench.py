"""CMTA model benchmark: one training step (forward + backward + SGD) and one full-bag
evaluation pass of the paper-preset model, by bag size.

CMTA trains with batch size 1 on bags of thousands of 1024-d tile embeddings; this measures
how step time and peak memory grow with the bag (Nystrom attention should keep both linear in
the number of tiles) and checks that the evaluation pass handles the largest bag.

    python bench/cmta_bench.py            # bags of 1k, 4k, 16k, 32k tiles
    python bench/cmta_bench.py --quick    # 500 and 2,000 tiles, about a minute
    python bench/cmta_bench.py --json     # last line: one JSON object
    python bench/cmta_bench.py --device cuda
    python bench/cmta_bench.py --threads 1   # on a shared machine, avoids thread oversubscription

Reported per bag size: median seconds per training step and per evaluation pass, and peak
memory (CUDA: max allocated; CPU: growth of the process's max RSS, a coarse upper bound).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time

import numpy as np
import torch

from pmx_cmta import CMTAMethod, build_optimizer

OMIC_SIZES = [94, 334, 521, 468, 1496, 479]


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_bag(model, optimizer, tiles: int, repeats: int, device: str) -> dict:
    gen = torch.Generator().manual_seed(tiles)
    path = torch.randn(tiles, 1024, generator=gen).to(device)
    omics = [torch.randn(w, generator=gen).to(device) for w in OMIC_SIZES]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    before = peak_memory_mb(device)
    train_times, eval_times = [], []
    for _ in range(repeats + 1):  # the first pass warms up
        model.train()
        sync()
        start = time.perf_counter()
        forward = model(path, omics)
        loss = model.losses(forward, np.array([10.0]), np.array([1]))["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()
        train_times.append(time.perf_counter() - start)
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            model.risk(model(path, omics))
        sync()
        eval_times.append(time.perf_counter() - start)
    peak = peak_memory_mb(device)
    return {
        "tiles": tiles,
        "train_step_s": round(statistics.median(train_times[1:]), 4),
        "eval_pass_s": round(statistics.median(eval_times[1:]), 4),
        "peak_mb": round(peak if device.startswith("cuda") else peak - before, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small bags, about a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per bag size")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    sizes = [500, 2000] if args.quick else [1000, 4000, 16000, 32000]
    repeats = args.repeats or (2 if args.quick else 3)
    torch.manual_seed(0)
    config = CMTAMethod.resolve_config("paper", sets=(f"model.omic_sizes={OMIC_SIZES}",))
    model = CMTAMethod(config).build_model().to(args.device)
    model.fit_time_bins(np.array([5.0, 10.0, 20.0, 40.0]), np.ones(4, dtype=bool))
    t = config.train
    optimizer = build_optimizer(model, t.optimizer, t.lr, t.weight_decay, t.momentum)

    rows = []
    for tiles in sizes:
        row = bench_bag(model, optimizer, tiles, repeats, args.device)
        rows.append(row)
        if not args.json:
            print(f"{tiles:>6} tiles  train step {row['train_step_s']:.3f} s  eval {row['eval_pass_s']:.3f} s  "
                  f"peak +{row['peak_mb']:.0f} MB", flush=True)
    per_tile = [r["train_step_s"] / r["tiles"] for r in rows]
    result = {
        "benchmark": "cmta",
        "device": args.device if args.device != "cpu" else f"cpu ({torch.get_num_threads()} threads)",
        "machine": platform.platform(),
        "parameters": model.num_parameters(),
        "rows": rows,
        # ~1.0 for linear scaling; quadratic attention would give about largest/smallest bag ratio
        "scaling_ratio": round(per_tile[-1] / per_tile[0], 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"parameters {result['parameters']:,}; per-tile cost ratio largest/smallest bag {result['scaling_ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
