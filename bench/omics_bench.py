"""Omics-selection benchmark: deseq2-rsf on a TCGA-sized RNA-seq matrix, one fold.

A synthetic GDC-like count matrix (default 60,000 genes x 500 patients, 40% of the genes
barely expressed as in STAR files, 50 planted survival genes) is split into 5 stratified folds;
``deseq2-rsf`` (default config: DESeq2 low-count prefilter, at most 20,000 genes tested by
mean count, PyDESeq2 Wald test, RSF top 300) is fit on one fold's training part and then
transforms all patients. Reported: seconds per step (prepare, differential test, forest,
transform), peak memory, what each step kept, and the planted genes among the 300 selected.
Data generation is not timed.

    python bench/omics_bench.py            # 60,000 genes x 500 patients (target: <= 600 s)
    python bench/omics_bench.py --quick    # 20,000 genes x 200 patients, well under a minute
    python bench/omics_bench.py --json     # last line: one JSON object

Target on a 2-core CPU machine: ``fit_transform_s`` <= 600 for the full size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

TARGET_S = 600.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 genes x 200 patients")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--genes", type=int, default=None, help="genes (default 60,000; quick 20,000)")
    parser.add_argument("--patients", type=int, default=None, help="patients (default 500; quick 200)")
    parser.add_argument("--n-cpus", type=int, default=2, help="processes for PyDESeq2 and the forest")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="deseq2-rsf config override (repeatable), e.g. --set de_max_features=10000")
    args = parser.parse_args(argv)
    genes = args.genes or (20_000 if args.quick else 60_000)
    patients = args.patients or (200 if args.quick else 500)

    from pmx.config import deep_merge, parse_set_option
    from pmx.evaluation.splits import fold_members, make_folds
    from pmx.omics.deseq2_rsf import DESeq2RSFSelector
    from pmx.omics.synthetic import make_synthetic_omics

    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(f"generating {genes:,} genes x {patients} patients ...")
    t0 = time.perf_counter()
    data = make_synthetic_omics(n_patients=patients, n_genes=genes, n_planted=50, effect=0.5,
                                unexpressed=0.4, seed=args.seed)
    generate_s = time.perf_counter() - t0
    survival = data.survival
    folds = make_folds(list(survival.index), survival["event"].to_numpy(), n_folds=5, seed=args.seed)
    train = fold_members(folds, 0)["train"]

    overrides: dict = {"n_cpus": args.n_cpus}
    for option in args.sets:
        overrides = deep_merge(overrides, parse_set_option(option))
    selector = DESeq2RSFSelector(**overrides)
    say(f"fitting deseq2-rsf on {len(train)} training patients (fold 0 of 5), n_cpus={args.n_cpus} ...")
    t0 = time.perf_counter()
    selector.fit(data.omics, survival.loc[train])
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = selector.transform(data.omics)["rna"]
    transform_s = time.perf_counter() - t0

    report = selector.report_["rna"]
    selected = [f for f in selector.selected_features_["rna"] if not f.startswith("__pad_")]
    hits = len(set(selected) & set(data.planted["rna"]))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "bench": "omics_bench",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()}",
        "genes": genes,
        "patients": patients,
        "train_patients": len(train),
        "n_cpus": args.n_cpus,
        "generate_s": round(generate_s, 1),
        "prepare_s": round(report["seconds"] - report["seconds_test"] - report["seconds_forest"], 1),
        "deseq2_s": report["seconds_test"],
        "forest_s": report["seconds_forest"],
        "fit_s": round(fit_s, 1),
        "transform_s": round(transform_s, 1),
        "fit_transform_s": round(fit_s + transform_s, 1),
        "target_s": TARGET_S,
        "within_target": bool(fit_s + transform_s <= TARGET_S),
        "peak_rss_mb": round(peak_mb),
        "after_variance": report["after_variance"],
        "tested": report["tested"],
        "passed_alpha": report["passed_alpha"],
        "candidates": report["candidates"],
        "selected": len(selected),
        "output_shape": list(out.shape),
        "forest_oob_c_index": report["forest_oob_c_index"],
        "planted_in_selection": hits,
        "planted_chance": round(len(selected) * len(data.planted["rna"]) / genes, 2),
        "config": selector.config.model_dump(mode="json"),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "config":
                print(f"{key:>22}: {value}")
    return result


if __name__ == "__main__":
    main()
