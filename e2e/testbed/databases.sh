#!/usr/bin/env bash
# Real database servers for the health-check tests, as local processes on loopback (no containers).
#
#   databases.sh up       install what is missing, start PostgreSQL, MariaDB and FerretDB, print env
#   databases.sh down     stop them (by PID) and remove their state
#   databases.sh env      print the connection settings as `export NAME=value` lines (exit 1 if down)
#   databases.sh status   list the servers and whether each is running
#   databases.sh install  only install the missing Debian packages (the real node's images copy them)
#
# PostgreSQL and MariaDB come from Debian packages (installed with apt-get when missing and running
# as root); FerretDB (the MongoDB wire protocol on its SQLite handler, with SCRAM authentication)
# is built by build.sh from the Go module proxy and cached by version. Each server keeps its data
# under $LAZARUS_TESTBED_STATE/databases and listens on 127.0.0.1 at $LAZARUS_TESTBED_PORT_BASE
# plus 432 (PostgreSQL), 306 (MariaDB) and 717 (FerretDB), so several test beds can run side by side.
# `up` is idempotent: a server whose PID is alive is left alone; `eval "$(databases.sh up)"` starts
# them and exports the settings the integration tests read (LAZARUS_PG_*, LAZARUS_MYSQL_*,
# LAZARUS_MONGO_*).
#
# Run `databases.sh down` before `testbed.sh down`: the latter removes the whole state directory,
# PID files included.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

DB_STATE=$TESTBED_STATE/databases
PG_PORT=$((PORT_BASE + 432))
MARIADB_PORT=$((PORT_BASE + 306))
FERRETDB_PORT=$((PORT_BASE + 717))
FERRETDB_DEBUG_PORT=$((PORT_BASE + 718))
FERRETDB_BIN=$(component_dir ferretdb "$FERRETDB_VERSION")
# Fixed credentials: the servers listen on loopback only and hold nothing but test data.
DB_USER=lazarus
DB_NAME=lazarus
PG_PASSWORD=lazarus-testbed-pg
MARIADB_PASSWORD=lazarus-testbed-mariadb
FERRETDB_PASSWORD=lazarus-testbed-mongo
SERVERS=(postgres mariadb ferretdb)

PROCESS_PREFIX=db-
# The data directory is always an argument of the server's command line.
process_marker() { server_dir "$1"; }
startup_failed() { die "$@"; }

server_dir() {
  case "$1" in
    postgres) postgres_dir ;;
    *) printf '%s/%s' "$DB_STATE" "$1" ;;
  esac
}

# PostgreSQL refuses to run as root, so as root it runs as the `postgres` user, which must reach its
# data directory. When it cannot (the state directory is under root's private home, e.g. the
# default ~/.cache), the data lives in a directory of its own under /tmp, named after the state
# directory, and the state directory holds a symlink to it (so `down` finds and removes it).
PG_RUN_AS=()
if [ "$(id -u)" = 0 ]; then PG_RUN_AS=(setpriv --reuid=postgres --regid=postgres --init-groups --reset-env); fi
postgres_dir() {
  local link=$DB_STATE/postgres
  if [ -L "$link" ]; then readlink "$link"; else printf '%s' "$link"; fi
}

postgres_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$bin" ] && [ -x "$bin/postgres" ] || return 1
  printf '%s' "$bin"
}

install_packages() {
  local missing=()
  postgres_bin >/dev/null || missing+=(postgresql)
  command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing database servers: ${missing[*]} (install them, e.g. 'sudo apt-get install ${missing[*]}')"
  fi
  log "installing Debian packages: ${missing[*]}"
  # Debian starts a package's service on install unless policy-rc.d says no: these servers must
  # only ever run as the test bed's own processes, so forbid it for the install.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$TESTBED_STATE/logs/db-apt.log" 2>&1 || rc=$?
  [ $created = 0 ] || rm -f "$policy"
  [ $rc = 0 ] || die "apt-get could not install ${missing[*]} (log: $TESTBED_STATE/logs/db-apt.log)"
}

# --------------------------------------------------------------------------------- PostgreSQL

pg_ready() { "$(postgres_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
pg_sql() { "$(postgres_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$(postgres_dir)" -p "$PG_PORT" -U postgres -d postgres "$@"; }

start_postgres() {
  is_running postgres && { log "postgres already running"; return 0; }
  local bin data; bin=$(postgres_bin)
  if [ ! -e "$DB_STATE/postgres" ]; then
    if [ ${#PG_RUN_AS[@]} -gt 0 ] && ! "${PG_RUN_AS[@]}" test -x "$DB_STATE"; then
      local outside; outside=/tmp/lazarus-testbed-pg-$(printf '%s' "$TESTBED_STATE" | sha256sum | cut -c1-12)
      rm -rf "$outside"; mkdir -p "$outside"
      ln -s "$outside" "$DB_STATE/postgres"
    else
      mkdir -p "$DB_STATE/postgres"
    fi
  fi
  data=$(postgres_dir)
  if [ ! -f "$data/PG_VERSION" ]; then
    [ ${#PG_RUN_AS[@]} -eq 0 ] || chown postgres:postgres "$data"
    chmod 700 "$data"
    log "initialising postgres in $data"
    # Local (socket) connections trust: only the test bed's own setup uses them. TCP needs a password.
    "${PG_RUN_AS[@]}" "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --no-locale -E UTF8 >"$(log_file postgres-initdb)" 2>&1 || die "postgres initdb failed (log: $(log_file postgres-initdb))"
  fi
  start postgres "${PG_RUN_AS[@]}" "$bin/postgres" -D "$data" -c listen_addresses=127.0.0.1 -c port="$PG_PORT" \
    -c unix_socket_directories="$data" -c shared_buffers=16MB -c max_connections=50 -c fsync=off \
    -c synchronous_commit=off -c full_page_writes=off
  wait_for postgres 60 pg_ready
  if [ -z "$(pg_sql -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" ]; then
    pg_sql -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$PG_PASSWORD'" -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" \
      || die "postgres setup failed"
  fi
}

# --------------------------------------------------------------------------------- MariaDB

MARIADB_ADMIN=$( [ "$(id -u)" = 0 ] && echo root || id -un )
mariadb_socket() { printf '%s/mariadbd.sock' "$DB_STATE/mariadb"; }
mariadb_ready() { mariadb-admin --no-defaults -S "$(mariadb_socket)" -u "$MARIADB_ADMIN" ping; }

start_mariadb() {
  is_running mariadb && { log "mariadb already running"; return 0; }
  local dir=$DB_STATE/mariadb
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    log "initialising mariadb in $dir/data"
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" --skip-test-db \
      --auth-root-authentication-method=socket >"$(log_file mariadb-install)" 2>&1 \
      || die "mariadb-install-db failed (log: $(log_file mariadb-install))"
  fi
  # exec, so the recorded PID is the server's. Small buffers: the test data is tiny.
  start mariadb mariadbd --no-defaults --datadir="$dir/data" --socket="$(mariadb_socket)" \
    --pid-file="$dir/mariadbd.pid" --port="$MARIADB_PORT" --bind-address=127.0.0.1 --user="$(id -un)" \
    --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
    --performance-schema=OFF
  wait_for mariadb 60 mariadb_ready
  mariadb --no-defaults -S "$(mariadb_socket)" -u "$MARIADB_ADMIN" -e "
    CREATE DATABASE IF NOT EXISTS $DB_NAME;
    CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$MARIADB_PASSWORD';
    GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';" || die "mariadb setup failed"
}

# --------------------------------------------------------------------------------- FerretDB

ferretdb_ready() { curl -sf "http://127.0.0.1:$FERRETDB_DEBUG_PORT/debug/readyz" && (exec 3<>"/dev/tcp/127.0.0.1/$FERRETDB_PORT"); }

start_ferretdb() {
  is_running ferretdb && { log "ferretdb already running"; return 0; }
  [ -x "$FERRETDB_BIN/ferretdb" ] || "$here/build.sh" ferretdb
  local dir=$DB_STATE/ferretdb
  mkdir -p "$dir/data"
  # --test-enable-new-auth: FerretDB's own SCRAM users (the setup user below), so a wrong password
  # is refused as by MongoDB; without it the SQLite handler accepts any credentials.
  start ferretdb "$FERRETDB_BIN/ferretdb" --handler=sqlite --sqlite-url="file:$dir/data/" --state-dir="$dir" \
    --listen-addr="127.0.0.1:$FERRETDB_PORT" --debug-addr="127.0.0.1:$FERRETDB_DEBUG_PORT" --telemetry=disable \
    --log-level=warn --test-enable-new-auth --setup-database="$DB_NAME" --setup-username="$DB_USER" \
    --setup-password="$FERRETDB_PASSWORD"
  wait_for ferretdb 60 ferretdb_ready
}

# --------------------------------------------------------------------------------- commands

print_env() {
  local q
  for q in \
    LAZARUS_PG_HOST=127.0.0.1 LAZARUS_PG_PORT="$PG_PORT" LAZARUS_PG_USER="$DB_USER" \
    LAZARUS_PG_PASSWORD="$PG_PASSWORD" LAZARUS_PG_DATABASE="$DB_NAME" \
    LAZARUS_MYSQL_HOST=127.0.0.1 LAZARUS_MYSQL_PORT="$MARIADB_PORT" LAZARUS_MYSQL_USER="$DB_USER" \
    LAZARUS_MYSQL_PASSWORD="$MARIADB_PASSWORD" LAZARUS_MYSQL_DATABASE="$DB_NAME" \
    LAZARUS_MONGO_HOST=127.0.0.1 LAZARUS_MONGO_PORT="$FERRETDB_PORT" LAZARUS_MONGO_USER="$DB_USER" \
    LAZARUS_MONGO_PASSWORD="$FERRETDB_PASSWORD" LAZARUS_MONGO_DATABASE="$DB_NAME"; do
    printf 'export %s\n' "$q"
  done
}

cmd_up() {
  local started=$SECONDS
  mkdir -p "$DB_STATE" "$TESTBED_STATE/logs" "$TESTBED_STATE/pids"
  install_packages
  start_postgres
  start_mariadb
  start_ferretdb
  log "databases ready in $((SECONDS - started))s"
  print_env
}

cmd_down() {
  stop ferretdb TERM
  stop mariadb TERM
  stop postgres INT
  local pg; pg=$(postgres_dir)
  [ "$pg" = "$DB_STATE/postgres" ] || rm -rf "$pg"
  rm -rf "$DB_STATE"
  log "databases stopped and their state removed"
}

cmd_env() {
  local s
  for s in "${SERVERS[@]}"; do
    is_running "$s" || { log "$s is not running: start the servers with 'databases.sh up'"; exit 1; }
  done
  print_env
}

cmd_status() { print_status "${SERVERS[@]}"; }

cmd_install() {
  mkdir -p "$TESTBED_STATE/logs"
  install_packages
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  install) cmd_install ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
