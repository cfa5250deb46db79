#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and local runs of the state store.
#
#   scripts/postgres.sh [start] [DIR]   create (once) and start a cluster in DIR, default
#                                       /tmp/streamplane-pg; it listens on 127.0.0.1 only, on
#                                       a free port, and has a database "streamplane". The last
#                                       line on stdout is its SQLAlchemy URL.
#   scripts/postgres.sh stop DIR        stop the server started in DIR (its files stay)
#   scripts/postgres.sh url DIR         print the URL of the server running in DIR
#
# When no server binaries are found it installs the Debian package "postgresql" (as root).
# As root, the server runs as the OS user "postgres": initdb refuses to run as root. The
# cluster trades durability for speed (fsync off): it is meant to be thrown away.
set -euo pipefail

DB_NAME=${STREAMPLANE_PG_DB:-streamplane}
DEFAULT_DIR=/tmp/streamplane-pg
PG_OS_USER=postgres
START_TIMEOUT_S=60
PORT_ATTEMPTS=20
MARKER=.streamplane-postgres

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }
is_root() { [[ $(id -u) -eq 0 ]]; }

has_server() { [[ -x $1/initdb && -x $1/pg_ctl && -x $1/postgres && -x $1/psql ]]; }

# The directory holding initdb, pg_ctl, postgres and psql, newest version first.
find_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    if [[ -n $d ]] && has_server "$d"; then echo "$d"; return 0; fi
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if has_server "$d"; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1; then
    d=$(dirname "$(readlink -f "$(command -v initdb)")")
    if has_server "$d"; then echo "$d"; return 0; fi
  fi
  return 1
}

install_server() {
  is_root || die "no PostgreSQL server binaries found; install them (Debian: apt-get install postgresql) or run this script as root"
  command -v apt-get >/dev/null 2>&1 || die "no PostgreSQL server binaries found and no apt-get to install them; install PostgreSQL and retry"
  log "no PostgreSQL server binaries found; installing the Debian package 'postgresql'"
  # the package would create and start a 'main' cluster on port 5432; only ours is wanted
  if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confold postgresql >&2
}

ensure_os_user() {
  is_root || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating the system user '$PG_OS_USER' to run the server"
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh "$PG_OS_USER"
}

# Run a server command as the cluster's owner: postgres when we are root, else ourselves.
as_owner() {
  if ! is_root; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    su -s /bin/sh "$PG_OS_USER" -c "$(printf '%q ' "$@")"
  fi
}

is_running() {
  local bindir=$1 data=$2
  [[ -f $data/postmaster.pid ]] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Below the usual ephemeral range (32768+), where client sockets would compete for ports.
random_port() { echo $((20000 + (RANDOM * 32768 + RANDOM) % 12000)); }

init_cluster() {
  local bindir=$1 dir=$2 data=$2/data pwfile
  log "initdb $data"
  head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$dir/password"
  chmod 600 "$dir/password"
  pwfile=$dir/.initdb-password
  install -m 600 /dev/null "$pwfile"
  cat "$dir/password" >"$pwfile"
  is_root && chown "$PG_OS_USER:" "$pwfile"
  as_owner "$bindir/initdb" -D "$data" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { rm -f "$pwfile"; die "initdb failed; see $dir/initdb.log: $(tail -n 5 "$dir/initdb.log")"; }
  rm -f "$pwfile"
  cat >>"$data/postgresql.conf" <<'EOF'

# streamplane throwaway cluster (scripts/postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start_on_free_port() {
  local bindir=$1 dir=$2 data=$2/data port seen attempt news
  for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
    port=$(random_port)
    port_in_use "$port" && continue
    seen=$( (wc -l <"$dir/postgres.log") 2>/dev/null || echo 0)
    if as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t "$START_TIMEOUT_S" \
      -o "-p $port" start >&2; then
      echo "$port"
      return 0
    fi
    # someone took the port between our check and the bind: try another one
    news=$(tail -n +"$((seen + 1))" "$dir/postgres.log")
    grep -q "could not bind\|already in use" <<<"$news" \
      || die "PostgreSQL did not start; see $dir/postgres.log: $(tail -n 5 "$dir/postgres.log")"
  done
  die "no free port found for PostgreSQL in $PORT_ATTEMPTS attempts"
}

start() {
  local dir=$1 bindir data port url password
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  data=$dir/data
  # the directory is chowned and chmodded below: never do that to one we did not make
  if [[ ! -e $dir/$MARKER && -n $(ls -A "$dir") ]]; then
    die "$dir is not empty and was not made by this script; give an empty or new directory"
  fi
  touch "$dir/$MARKER"
  cd "$dir"  # the postgres user may not be able to enter the caller's directory
  bindir=$(find_bindir) || { install_server; bindir=$(find_bindir) || die "PostgreSQL was installed but its binaries were not found"; }
  log "using PostgreSQL binaries in $bindir"
  ensure_os_user
  if is_root; then
    chown "$PG_OS_USER:" "$dir"
    chmod 700 "$dir"
    as_owner test -w "$dir" \
      || die "user '$PG_OS_USER' cannot reach $dir (a parent directory is private); choose a directory under /tmp"
  fi
  if is_running "$bindir" "$data" && [[ -s $dir/url ]]; then
    log "already running in $dir"
    tail -n 1 "$dir/url"
    return 0
  fi
  [[ -s $data/PG_VERSION ]] || init_cluster "$bindir" "$dir"
  password=$(cat "$dir/password")
  port=$(start_on_free_port "$bindir" "$dir")
  log "PostgreSQL listening on 127.0.0.1:$port (pid $(head -n 1 "$data/postmaster.pid"))"
  if [[ -z $(PGPASSWORD=$password "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -XqAt -v ON_ERROR_STOP=1 -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
    PGPASSWORD=$password "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -Xq -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB_NAME\"" >&2
  fi
  url="postgresql+psycopg://postgres:$password@127.0.0.1:$port/$DB_NAME"
  install -m 600 /dev/null "$dir/url"
  echo "$url" >"$dir/url"
  echo "$url"
}

stop() {
  local dir data bindir pid cmdline
  if [[ ! -d $1 ]]; then
    log "no server running in $1"
    return 0
  fi
  dir=$(cd "$1" && pwd)
  data=$dir/data
  if [[ ! -f $data/postmaster.pid ]]; then
    log "no server running in $dir"
    return 0
  fi
  bindir=$(find_bindir) || die "no PostgreSQL binaries found to stop the server in $dir"
  cd "$dir"
  pid=$(head -n 1 "$data/postmaster.pid")
  if as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t "$START_TIMEOUT_S" stop >&2; then
    return 0
  fi
  # pg_ctl gave up: end that one postmaster (and so its backends), nothing else
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  if [[ $cmdline == *postgres*"$data"* ]]; then
    log "pg_ctl stop failed; sending SIGQUIT to postmaster $pid"
    kill -QUIT "$pid" 2>/dev/null || true
  fi
}

url() {
  local dir bindir
  dir=$(cd "$1" && pwd) || die "no directory $1"
  bindir=$(find_bindir) || die "no PostgreSQL binaries found"
  cd "$dir"
  is_running "$bindir" "$dir/data" && [[ -s $dir/url ]] || die "no server running in $dir"
  tail -n 1 "$dir/url"
}

case ${1:-start} in
  start) start "${2:-$DEFAULT_DIR}" ;;
  stop) [[ $# -ge 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
  url) [[ $# -ge 2 ]] || die "usage: $0 url DIR"; url "$2" ;;
  -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' ;;
  -*) die "unknown option $1; see $0 --help" ;;
  *) start "$1" ;;
esac
