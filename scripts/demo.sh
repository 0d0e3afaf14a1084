#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job on the built-in demo cohort (CPU, embedded store).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pmx doctor
