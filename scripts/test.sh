#!/usr/bin/env bash
# Installs everything, then runs the whole check suite: lint, types, tests (real Kafka,
# real PostgreSQL). The store tests run on both SQLite and PostgreSQL; the mothership runs
# on PostgreSQL here (set STREAMPLANE_TEST_MOTHERSHIP_DB= to run it on SQLite instead).
#
# With no arguments the tests run as two pytest processes side by side (the mothership's
# platform tests, and the rest), since most of their time is spent waiting for Kafka
# processes rather than computing; then the tests marked `timing` (rates, latencies) run
# alone. Each run writes its output to a file, shown when all are done. With arguments,
# one pytest process gets them: scripts/test.sh tests/gateway -x
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
.venv/bin/ruff check src tests bench
.venv/bin/mypy

pgdir=$(mktemp -d /tmp/streamplane-test-pg.XXXXXX)
shards=$(mktemp -d /tmp/streamplane-test-shards.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; done
    ./scripts/postgres.sh stop "$pgdir" >/dev/null 2>&1 || true
    rm -rf "$pgdir" "$shards"
}
trap cleanup EXIT
pg_url=$(./scripts/postgres.sh start "$pgdir" | tail -n 1)
export STREAMPLANE_TEST_PG_URL="$pg_url"
export STREAMPLANE_TEST_MOTHERSHIP_DB="${STREAMPLANE_TEST_MOTHERSHIP_DB-$pg_url}"

if [ "$#" -gt 0 ]; then
    .venv/bin/pytest --durations=30 "$@"
    exit
fi

# shard name and its pytest arguments; the mothership directory is the only user of the
# PostgreSQL database the platform runs on, so it stays in one shard
run_shard() {
    local name=$1; shift
    mkdir -p "$shards/$name"
    .venv/bin/pytest --durations=20 --basetemp="$shards/$name/tmp" "$@" >"$shards/$name/out" 2>&1
}
run_shard platform -m "not timing and not system" tests/mothership & pids+=($!)
run_shard rest -m "not timing and not system" --ignore=tests/mothership tests & pids+=($!)

status=0
codes=()
for pid in "${pids[@]}"; do
    code=0
    wait "$pid" || code=$?
    codes+=("$code")
    [ "$code" -eq 0 ] || status=1
done
pids=()
# tests that measure rates or latencies run alone, on a machine the shards no longer load
code=0
run_shard timing -m "timing and not system" tests || code=$?
codes+=("$code")
[ "$code" -eq 0 ] || status=1
for name in platform rest timing; do
    echo "======================== shard $name ========================"
    cat "$shards/$name/out"
done
# each shard's verdict again at the end, where a reader of the tail looks
for name in platform rest timing; do
    echo "------------------------ shard $name: summary ------------------------"
    sed -n '/short test summary info/,$p' "$shards/$name/out" | grep -v '^$' || tail -n 3 "$shards/$name/out"
done
echo "shards: platform exit ${codes[0]}, rest exit ${codes[1]}, timing exit ${codes[2]}"
exit "$status"
