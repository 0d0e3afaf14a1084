"""CMTA Table 2 ablations on the demo cohort: the full model and one run per removed component.

Each variant is a whole `pmx run plugin:cmta --demo --preset tiny` (in this process), on one
store, so the data stages (demo cohort, ingest, tiles, embeddings, folds) are computed by the
first run and are cache hits for the others; every variant is scored on the same 5 folds.

    python bench/cmta_ablations.py                 # full + 4 ablations, seed 0 (~8 min on 2 busy cores)
    python bench/cmta_ablations.py --seeds 0 1     # each variant on two demo cohorts / fold seeds
    python bench/cmta_ablations.py --quick         # 60-patient demo, 2 epochs: a smoke run of the switches
    python bench/cmta_ablations.py --json          # last line: one JSON object

Reported per variant and seed: mean and std of the per-fold test C-index (Harrell), the run's
seconds (data stages and training separately) and the 1-minute load average before and after
(the machine may be shared; timings are only comparable at similar load).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Table 2 of the paper: row name -> the config switch that removes the component
VARIANTS: dict[str, list[str]] = {
    "CMTA (full)": [],
    "w/o cross-modal attention": ["model.cross_attention=false"],
    "w/o alignment constraints": ["loss.alignment=false"],
    "w/o tensor detaching": ["loss.detach=false"],
    "w/o PPEG": ["model.ppeg=false"],
}


def run_variant(name: str, sets: list[str], *, seed: int, store: str, out: Path, preset: str) -> dict:
    import pmx
    from pmx_cmta import CMTAMethod
    from pmx_cmta.pipeline import run_cmta

    config = CMTAMethod.resolve_config(preset, sets=sets)
    context = pmx.RunContext(method="cmta", preset=preset, store=store, out_dir=out, seed=seed, device="cpu",
                             demo=True)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    results = run_cmta(CMTAMethod(config), context, progress=False)
    seconds = time.perf_counter() - start
    run_dir = max((p for p in out.iterdir() if p.name.startswith(f"cmta-{preset}-")), key=lambda p: p.stat().st_mtime)
    lineage = json.loads((run_dir / "lineage.json").read_text())
    return {
        "variant": name,
        "sets": sets,
        "seed": seed,
        "c_index_mean": round(results.c_index_mean, 4),
        "c_index_std": round(results.c_index_std, 4),
        "folds": [round(f.c_index, 4) for f in results.folds],
        "best_epochs": [f["best_epoch"] for f in lineage["folds"]],
        "seconds": round(seconds, 1),
        "data_seconds": lineage["seconds"]["data"],
        "train_seconds": round(sum(f["seconds"] for f in lineage["folds"]), 1),
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "run_dir": str(run_dir),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60-patient demo, 2 epochs (checks the switches run)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="demo cohort / fold / init seeds")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        metavar="NAME", help="a subset of: " + ", ".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=None, help="run directories and the store (default: a temp dir)")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="extra override for every variant")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO, format="%(name)s: %(message)s")
    out = args.out or Path(tempfile.mkdtemp(prefix="cmta-ablations-"))
    out.mkdir(parents=True, exist_ok=True)
    extra = (["demo.patients=60", "train.epochs=2"] if args.quick else []) + list(args.sets)

    rows = []
    for seed in args.seeds:
        for name in args.variants:
            row = run_variant(name, VARIANTS[name] + extra, seed=seed, store=str(out / "store"), out=out / "runs",
                              preset=args.preset)
            rows.append(row)
            if not args.json:
                print(f"seed {seed}  {name:<28} C {row['c_index_mean']:.3f} +/- {row['c_index_std']:.3f}  "
                      f"{row['seconds']:.0f} s (train {row['train_seconds']:.0f} s)  load {row['load']}", flush=True)
    summary = {}
    for name in args.variants:
        means = [r["c_index_mean"] for r in rows if r["variant"] == name]
        summary[name] = {"c_index_mean": round(float(np.mean(means)), 4), "seeds": len(means)}
    result = {"benchmark": "cmta_ablations", "preset": args.preset, "quick": args.quick, "extra_sets": extra,
              "machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows, "summary": summary}
    if args.json:
        print(json.dumps(result))
    else:
        for name, s in summary.items():
            print(f"{name:<28} mean C over {s['seeds']} seed(s): {s['c_index_mean']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
