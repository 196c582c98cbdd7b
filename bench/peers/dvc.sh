#!/usr/bin/env bash
# Install DVC (the peer of `yard data`) into its own virtualenv under bench/.scratch/dvc-venv.
# Never a project dependency. Usage: bash bench/peers/dvc.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$HERE/.scratch/dvc-venv"
if [ ! -x "$VENV/bin/dvc" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "dvc==3.67.1"
fi
"$VENV/bin/dvc" --version
