#!/usr/bin/env bash
# Install Apache DataSketches (the peer of data/_sketches.py) into its own virtualenv under
# bench/.scratch/ds-venv (with the system site packages, so numpy and modelyard's deps are there).
# Never a project dependency. Usage: bash bench/peers/datasketches.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$HERE/.scratch/ds-venv"
if ! "$VENV/bin/python" -c "import datasketches" 2>/dev/null; then
  python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q "datasketches==5.2.0"
fi
"$VENV/bin/python" -c "import importlib.metadata as m; print('datasketches', m.version('datasketches'))"
