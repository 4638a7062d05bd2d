#!/usr/bin/env bash
# Set up everything and run the whole suite: lint, types, and the tests against real SQLite,
# a real PostgreSQL server on loopback and a real headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. System packages: PostgreSQL server and Debian's Chromium for the admin page tests.
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Python and front-end dependencies.
./scripts/setup.sh dev

# 3. A throw-away PostgreSQL cluster on loopback, stopped when the suite ends.
pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
pg_port=${RAPPORT_TEST_PG_PORT:-54329}
pg_dir=$(mktemp -d /tmp/rapport-pg.XXXXXX)
pg_user=$(id -un)
run_pg() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
  # PostgreSQL refuses to run as root; use the account its package created.
  id postgres >/dev/null 2>&1 || as_root useradd --system --home "$pg_dir" postgres
  chown postgres "$pg_dir"
  pg_user=postgres
  run_pg() { runuser -u postgres -- "$@"; }
fi
cleanup() {
  run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap cleanup EXIT
run_pg "$pg_bin/initdb" -D "$pg_dir/data" -U "$pg_user" --auth=trust -E UTF8 >/dev/null
run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c max_connections=200" start >/dev/null
export RAPPORT_TEST_POSTGRES_URL="postgresql+psycopg://$pg_user@127.0.0.1:$pg_port/postgres"
export RAPPORT_REQUIRE_POSTGRES=1
export RAPPORT_CHROMIUM=${RAPPORT_CHROMIUM:-$(command -v chromium)}

# 4. Lint, types, import contracts, tests.
.venv/bin/ruff check src tests bench clients
.venv/bin/ruff format --check src tests bench clients
.venv/bin/mypy
.venv/bin/lint-imports --no-cache  # the domain boundaries (docs/architecture.md)
# The slowest tests are listed at the end: the suite is meant to stay near ten minutes. It runs
# on one worker per core, at most four (each worker starts servers and a browser of its own);
# RAPPORT_TEST_WORKERS sets how many (0: all in this process, as a debugger wants).
workers=${RAPPORT_TEST_WORKERS:-$(nproc)}
[ "$workers" -le 4 ] || workers=4
.venv/bin/pytest -n "$workers" --durations=25 "$@"
