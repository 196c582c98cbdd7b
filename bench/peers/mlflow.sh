#!/usr/bin/env bash
# Creates the MLflow peer virtualenv used by bench/tracking.py and bench/server.py:
#   bench/.scratch/peers/mlflow  (mlflow==3.17.2; never a project dependency)
# 3.18.0 is listed on PyPI but its mlflow-skinny==3.18.0 is missing, so the version is pinned.
# Usage: bash bench/peers/mlflow.sh   (idempotent; rerun to repair a half-built venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/../.scratch/peers/mlflow"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
mkdir -p "$(dirname "$venv")"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "mlflow==3.17.2"
# bench/server.py --postgres runs `mlflow server` on PostgreSQL: SQLAlchemy's default driver there is psycopg2.
"$venv/bin/python" -m pip install --quiet psycopg2-binary
"$venv/bin/python" -c "import mlflow, sys; print('mlflow', mlflow.__version__, 'in', sys.prefix)"
