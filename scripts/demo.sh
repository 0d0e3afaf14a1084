#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job on the built-in demo cohort (CPU, embedded store):
# ContraMAE at the `tiny` preset: demo cohort -> ingest -> representative regions (stored in the
# feature store) -> per-fold deseq2-rsf selection -> pretraining -> fine-tuning (5-fold CV) ->
# results.json, results.md, km.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pmx doctor
.venv/bin/pmx run plugin:contramae --demo --preset tiny --out runs "$@"
echo "[pmx demo] results under runs/ (results.md, results.json, km.png)"
