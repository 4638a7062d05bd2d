#!/usr/bin/env bash
# Set up and start Rapport with the embedded SQLite database and a demo retailer.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export RAPPORT_DATABASE_URL=${RAPPORT_DATABASE_URL:-sqlite:///var/rapport.db}
.venv/bin/rapport init --demo --demo-customers "${RAPPORT_DEMO_CUSTOMERS:-2000}"
exec .venv/bin/rapport serve
