#!/usr/bin/env bash
# Installs everything, then runs the whole check suite: lint, types, tests (real Kafka).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
.venv/bin/ruff check src tests bench
.venv/bin/mypy
exec .venv/bin/pytest "$@"
