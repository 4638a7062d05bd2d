#!/usr/bin/env bash
# Set up and start Rapport with the embedded SQLite database and a demo retailer. Run it again
# at will: it keeps the database, the admin login and the API key of the first run.
#
# The data (database, cookie secret, first-run credentials) go where every `rapport` command
# finds them, from any directory: RAPPORT_DATA_DIR, by default ~/.local/share/rapport
# (docs/operator-guide.md). Set RAPPORT_DATA_DIR or RAPPORT_DATABASE_URL to use another.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/rapport init --demo --demo-customers "${RAPPORT_DEMO_CUSTOMERS:-2000}"
exec .venv/bin/rapport serve
