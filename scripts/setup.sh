#!/usr/bin/env bash
# Shared set-up for run.sh and test.sh: a virtual environment with Rapport and its pinned
# dependencies, and the admin pages' front-end packages from npm. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "Rapport needs Python 3.11 ($PYTHON not found)." >&2
  exit 1
fi

extras=${1:-}
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the dependency list changed since the last set-up.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ clients/python/pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  # The Python client (clients/python) is tested against a live server with the suite.
  if [ "$extras" = dev ]; then
    .venv/bin/python -m pip install --quiet -e clients/python
  fi
  touch "$stamp"
fi

if command -v npm >/dev/null 2>&1; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
else
  echo "npm not found: admin pages will work without charts and styling." >&2
fi
