#!/usr/bin/env bash
# Installs everything Streamplane needs on a fresh machine: the Python virtualenv at .venv
# (locked packages, via uv) and the Apache Kafka jars (via Maven, into a cache outside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "install.sh: '$1' is required: $2" >&2; exit 1; }; }
need python3 "install Python 3.11 or newer"
need java "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
need mvn "install Apache Maven (Debian: apt-get install maven)"

tools="${XDG_CACHE_HOME:-$HOME/.cache}/streamplane/tools"
if [ ! -x "$tools/bin/uv" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check "uv==0.13.9"
fi
export UV_PYTHON_DOWNLOADS=never
"$tools/bin/uv" sync --frozen --python python3 --quiet
.venv/bin/streamplane engine install --all
