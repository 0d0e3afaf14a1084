#!/usr/bin/env bash
# Create ./.venv and install pmx (editable, with test extras) and every plugin under plugins/.
# Idempotent: a second run only checks what is installed. Override the torch pins with
# PMX_TORCH_SPEC (e.g. PMX_TORCH_SPEC="torch torchvision" on a machine with its own CUDA wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${PMX_TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}

if [ ! -x .venv/bin/python ]; then
  echo "[pmx setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  echo "[pmx setup] installing $TORCH_SPEC"
  # shellcheck disable=SC2086
  "${PIP[@]}" install $TORCH_SPEC
fi
echo "[pmx setup] installing pmx (editable) and its dependencies"
"${PIP[@]}" install -e '.[dev]'
for plugin in plugins/*/; do
  if [ -f "$plugin/pyproject.toml" ]; then
    echo "[pmx setup] installing plugin $plugin"
    "${PIP[@]}" install -e "$plugin"
  fi
done
.venv/bin/pmx --version
