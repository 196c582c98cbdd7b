#!/usr/bin/env bash
# Install Evidently (the drift peer) into its own virtualenv under bench/.scratch/ (never a project dependency).
# Evidently 0.7.23 does not import with pandas 3: pin pandas<3.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.scratch/evidently-venv
if [ ! -x "$VENV/bin/python" ]; then
  python -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "evidently==0.7.23" "pandas<3" numpy scipy
"$VENV/bin/python" -c "import evidently; print('evidently', evidently.__version__)"
