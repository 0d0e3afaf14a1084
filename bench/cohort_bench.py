"""Demo-cohort benchmark: how long `pmx demo-data` and `pmx ingest` take.

The demo cohort is what the README's main command and every learning test start from, so its
generation must stay well under a couple of minutes on 2 CPU cores, and ingest (reading every GDC
file and opening every slide) must be quick too.

    python bench/cohort_bench.py            # the default cohort: 150 patients, 2048-px slides
    python bench/cohort_bench.py --quick    # 40 patients, about a minute on a busy machine
    python bench/cohort_bench.py --json     # last line: one JSON object

Reported: wall and CPU seconds (this process plus its slide-rendering workers) of generation,
of reading + validating the cohort, and of writing it to a fresh store; cohort size on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(func):
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = func()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 patients instead of 150")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--slide-size", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()

    from pmx.cohorts import load_cohort
    from pmx.cohorts.demo import DemoSettings, generate_demo_cohort
    from pmx.cohorts.ingestion import write_cohort
    from pmx.featurestore import open_store

    patients = args.patients or (40 if args.quick else 150)
    settings = DemoSettings(patients=patients, slide_size=args.slide_size, workers=args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demo"
        demo, gen_wall, gen_cpu = timed(lambda: generate_demo_cohort(root, settings, progress=False))
        size_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
        cohort, load_wall, load_cpu = timed(lambda: load_cohort(demo.manifest))
        store = open_store(Path(tmp) / "store")
        _, ingest_wall, ingest_cpu = timed(lambda: write_cohort(cohort, store))
    result = {
        "patients": patients,
        "slides": demo.n_slides,
        "slide_size": args.slide_size,
        "workers": args.workers or os.cpu_count(),
        "generate_wall_s": round(gen_wall, 2),
        "generate_cpu_s": round(gen_cpu, 2),
        "load_validate_wall_s": round(load_wall, 2),
        "store_write_wall_s": round(ingest_wall, 2),
        "ingest_cpu_s": round(load_cpu + ingest_cpu, 2),
        "cohort_mb": round(size_mb, 1),
        "oracle_c_index": demo.truth["c_index"]["oracle"],
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}",
    }
    if not args.json:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    print(json.dumps(result) if args.json else "", file=sys.stdout)


if __name__ == "__main__":
    main()
