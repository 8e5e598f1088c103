#!/bin/sh
# Entry point of the test bed's FerretDB image: the MongoDB wire protocol on FerretDB's SQLite
# handler, data and state in /state (a volume), SCRAM authentication on (--test-enable-new-auth,
# as the host FerretDB of the former databases.sh ran: a wrong password is refused).
# The user is made from FERRETDB_USER / FERRETDB_PASSWORD / FERRETDB_DATABASE (FerretDB's own
# FERRETDB_SETUP_USERNAME / _PASSWORD / _DATABASE and the official MongoDB image's
# MONGO_INITDB_ROOT_USERNAME / _PASSWORD and MONGO_INITDB_DATABASE work too; database default admin).
# FerretDB creates it when it sets up an empty backend; a restored /state keeps its users.
# Every other FERRETDB_* variable is a FerretDB flag (see `ferretdb --help`).
set -eu
export FERRETDB_SETUP_USERNAME="${FERRETDB_USER:-${FERRETDB_SETUP_USERNAME:-${MONGO_INITDB_ROOT_USERNAME:-}}}"
export FERRETDB_SETUP_PASSWORD="${FERRETDB_PASSWORD:-${FERRETDB_SETUP_PASSWORD:-${MONGO_INITDB_ROOT_PASSWORD:-}}}"
export FERRETDB_SETUP_DATABASE="${FERRETDB_DATABASE:-${FERRETDB_SETUP_DATABASE:-${MONGO_INITDB_DATABASE:-admin}}}"
unset FERRETDB_USER FERRETDB_PASSWORD FERRETDB_DATABASE
if [ -z "$FERRETDB_SETUP_USERNAME" ]; then
  unset FERRETDB_SETUP_USERNAME FERRETDB_SETUP_PASSWORD FERRETDB_SETUP_DATABASE
elif [ -z "$FERRETDB_SETUP_PASSWORD" ]; then
  echo "ferretdb: a setup user needs a password (FERRETDB_PASSWORD)" >&2
  exit 1
fi
mkdir -p "$FERRETDB_STATE_DIR" "${FERRETDB_SQLITE_URL#file:}"
case "${1:-}" in
  ""|-*) set -- /ferretdb --test-enable-new-auth "$@" ;;
esac
exec "$@"
