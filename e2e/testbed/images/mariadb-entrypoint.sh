#!/bin/sh
# Entry point of the test bed's MariaDB image, with the official image's settings:
# MARIADB_ROOT_PASSWORD (or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1), MARIADB_ROOT_HOST (default %),
# MARIADB_DATABASE, MARIADB_USER and MARIADB_PASSWORD; each also read as MYSQL_*. Data lives in
# /var/lib/mysql. An empty data directory is initialised once (system tables, root, the database
# and the user, in one `mariadbd --bootstrap` pass); a restored one is used as it is.
# Arguments starting with `-` are options for mariadbd; any other command is run as given.
set -eu
DATADIR=/var/lib/mysql
SHARE=/usr/share/mysql

setting() { eval "printf '%s' \"\${MARIADB_$1:-\${MYSQL_$1:-}}\""; }
# A value as the body of an SQL string literal: backslashes and quotes doubled.
sql_string() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g"; }
sql_name() { printf '%s' "$1" | sed -e 's/`/``/g'; }

# The statements after the system tables; bootstrap mode reads one statement per line.
account_sql() {
  root_password=$(sql_string "$(setting ROOT_PASSWORD)")
  root_host=$(sql_string "${MARIADB_ROOT_HOST:-${MYSQL_ROOT_HOST:-%}}")
  database=$(setting DATABASE)
  user=$(setting USER)
  # Only root@localhost stays of the accounts the system tables make (no anonymous users, no
  # root@<hostname>); then the grant tables are loaded, so that account statements work.
  echo "DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host != 'localhost');"
  echo "DELETE FROM mysql.proxies_priv WHERE Host != 'localhost';"
  echo "FLUSH PRIVILEGES;"
  echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_password';"
  if [ "$root_host" != localhost ]; then
    echo "CREATE USER 'root'@'$root_host' IDENTIFIED BY '$root_password';"
    echo "GRANT ALL ON *.* TO 'root'@'$root_host' WITH GRANT OPTION;"
  fi
  [ -z "$database" ] || echo "CREATE DATABASE IF NOT EXISTS \`$(sql_name "$database")\`;"
  if [ -n "$user" ]; then
    echo "CREATE USER '$(sql_string "$user")'@'%' IDENTIFIED BY '$(sql_string "$(setting PASSWORD)")';"
    [ -z "$database" ] || echo "GRANT ALL ON \`$(sql_name "$database")\`.* TO '$(sql_string "$user")'@'%';"
  fi
}

initialise() {
  if [ -z "$(setting ROOT_PASSWORD)" ] && [ "$(setting ALLOW_EMPTY_ROOT_PASSWORD)" != 1 ] \
    && [ "$(setting ALLOW_EMPTY_ROOT_PASSWORD)" != yes ]; then
    echo "mariadb: database is uninitialized and MARIADB_ROOT_PASSWORD is not set" >&2
    exit 1
  fi
  if [ -n "$(setting USER)" ] && [ -z "$(setting PASSWORD)" ]; then
    echo "mariadb: MARIADB_USER is set but MARIADB_PASSWORD is not" >&2
    exit 1
  fi
  echo "mariadb: initialising $DATADIR" >&2
  {
    printf 'CREATE DATABASE IF NOT EXISTS mysql;\nUSE mysql;\nSET @auth_root_socket=NULL;\n'
    cat "$SHARE/mysql_system_tables.sql" "$SHARE/mysql_performance_tables.sql" \
      "$SHARE/mysql_system_tables_data.sql" "$SHARE/fill_help_tables.sql" \
      "$SHARE/maria_add_gis_sp_bootstrap.sql" "$SHARE/mysql_sys_schema.sql"
    account_sql
  } | mariadbd --bootstrap --datadir="$DATADIR" --log-warnings=0 --enforce-storage-engine="" \
    --skip-log-bin --max_allowed_packet=8M --net_buffer_length=16K
  printf '%s' "$(mariadbd --version | sed -n 's/.*Ver \([^ ]*\).*/\1/p')" >"$DATADIR/mysql_upgrade_info"
}

case "${1:-mariadbd}" in
  -*) set -- mariadbd "$@" ;;
esac
[ $# -gt 0 ] || set -- mariadbd
if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
  [ -d "$DATADIR/mysql" ] || initialise
fi
exec "$@"
