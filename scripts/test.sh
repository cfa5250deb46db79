#!/usr/bin/env bash
# Installs everything, then runs the whole check suite: lint, types, tests (real Kafka,
# real PostgreSQL). The store tests run on both SQLite and PostgreSQL; the mothership runs
# on PostgreSQL here (set STREAMPLANE_TEST_MOTHERSHIP_DB= to run it on SQLite instead).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
.venv/bin/ruff check src tests bench
.venv/bin/mypy

pgdir=$(mktemp -d /tmp/streamplane-test-pg.XXXXXX)
stop_pg() { ./scripts/postgres.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
trap stop_pg EXIT
pg_url=$(./scripts/postgres.sh start "$pgdir" | tail -n 1)
export STREAMPLANE_TEST_PG_URL="$pg_url"
export STREAMPLANE_TEST_MOTHERSHIP_DB="${STREAMPLANE_TEST_MOTHERSHIP_DB-$pg_url}"

.venv/bin/pytest --durations=30 "$@"
