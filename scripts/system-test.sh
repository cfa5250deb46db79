#!/usr/bin/env bash
# System tests: long scenarios that CI does not run (zone loss with GiBs of data, seeded
# kill-at-random runs). Record each run's date and figures in docs/SYSTEM-TESTS.md.
#   scripts/system-test.sh                      # every system test
#   SYSTEM_TEST_SEED=42 SYSTEM_TEST_ROUNDS=10 SYSTEM_TEST_DATA_MB=4096 scripts/system-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pytest ] || ./scripts/install.sh
if [ "$(id -u)" != 0 ]; then
    echo "system-test.sh: the zone tests need root (network namespaces per satellite)" >&2
    exit 2
fi
exec .venv/bin/pytest -m system -s -p no:cacheprovider --durations=0 tests/system "$@"
