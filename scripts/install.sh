#!/usr/bin/env bash
# Installs everything Streamplane needs on a fresh machine: the Python virtualenv at .venv
# (locked packages, via uv) and the Apache Kafka jars (via Maven, into a cache outside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages we need; installed here when missing and we are root, else named.
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
# kcat is one of the real clients the gateway is tested with
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "install.sh: please install ${missing[*]} (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
command -v python3 >/dev/null 2>&1 || { echo "install.sh: install Python 3.11 or newer" >&2; exit 1; }

tools="${XDG_CACHE_HOME:-$HOME/.cache}/streamplane/tools"
if [ ! -x "$tools/bin/uv" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check "uv==0.13.9"
fi
export UV_PYTHON_DOWNLOADS=never
"$tools/bin/uv" sync --frozen --python python3 --quiet
.venv/bin/streamplane engine install --all
