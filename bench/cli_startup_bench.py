"""CLI start-up benchmark: wall time of `pmx --version`, `--help`, `plugins`, `components`.

Every `pmx` command loads the plugin host, so its cost is paid before any work starts. Each
command runs as a fresh subprocess (``python -m pmx.cli``), repeated, and the median is kept;
the heavy libraries found in ``sys.modules`` after loading the host are listed too.

    python bench/cli_startup_bench.py                 # 5 repeats of each command
    python bench/cli_startup_bench.py --quick         # 2 repeats
    python bench/cli_startup_bench.py --json          # last line: one JSON object
    python bench/cli_startup_bench.py --pythonpath DIR   # time another checkout (DIR holds pmx/)

Timings are noisy on a shared machine: the load average before and after is reported, and
``--interleave DIR`` alternates this checkout and DIR's on every repeat so both see the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "--version": ["--version"],
    "--help": ["--help"],
    "plugins": ["plugins"],
    "components": ["components"],
}
HEAVY = ["torch", "torchvision", "timm", "sklearn", "sksurv", "pydeseq2", "lifelines", "lancedb",
         "matplotlib", "pandas", "pyarrow", "numpy", "scipy", "openslide", "polars"]
PROBE = (
    "import json, sys, time; t = time.perf_counter(); from pmx.plugins import load_host; "
    "h = load_host(); print(json.dumps({'seconds': time.perf_counter() - t, "
    "'components': len(list(h.registry.registrations())), "
    "'imported': [m for m in %r if m in sys.modules]}))" % HEAVY
)


def _env(pythonpath: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PMX_LOAD_PLUGINS", "PYTHONPATH")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def run_once(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pmx.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--pythonpath", default=None, help="time the pmx found on this path instead")
    parser.add_argument("--interleave", default=None, metavar="DIR",
                        help="also time the pmx under DIR, alternating with this one")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    setups = {"this": _env(args.pythonpath)}
    if args.interleave:
        setups["other"] = _env(args.interleave)

    load_before = os.getloadavg()[0]
    times: dict[str, dict[str, list[float]]] = {s: {c: [] for c in COMMANDS} for s in setups}
    for _ in range(repeats):
        for name, argv in COMMANDS.items():
            for setup, env in setups.items():
                times[setup][name].append(run_once(argv, env))
    result = {
        "repeats": repeats,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    for setup, env in setups.items():
        result[setup] = {
            "median_s": {c: round(statistics.median(v), 3) for c, v in times[setup].items()},
            "min_s": {c: round(min(v), 3) for c, v in times[setup].items()},
            "host": probe(env),
        }
    for setup in setups:
        print(f"[{setup}] load_host {result[setup]['host']['seconds']:.2f} s, "
              f"{result[setup]['host']['components']} components, "
              f"imports: {', '.join(result[setup]['host']['imported']) or '-'}")
        for command in COMMANDS:
            print(f"  pmx {command:<11} median {result[setup]['median_s'][command]:.2f} s "
                  f"(min {result[setup]['min_s'][command]:.2f} s)")
    print(f"load average {result['load_before']} -> {result['load_after']}")
    print(json.dumps(result) if args.json else "")


if __name__ == "__main__":
    main()
