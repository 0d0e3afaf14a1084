#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job on the built-in demo cohort (CPU, embedded store):
# CMTA at the `tiny` preset: demo cohort -> ingest -> grid tiles -> ResNet-50 (truncated)
# embeddings -> per-fold gene-family selection -> training -> results.json, results.md, km.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pmx doctor
.venv/bin/pmx run plugin:cmta --demo --preset tiny --out runs "$@"
echo "[pmx demo] results under runs/ (results.md, results.json, km.png)"
