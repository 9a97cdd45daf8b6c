#!/bin/sh
# PostgreSQL for outguard's cluster mode: on first start a cluster whose superuser is
# "outguard" (password from $POSTGRES_PASSWORD_FILE) with a database "outguard"; then the
# server on 127.0.0.1:${PGPORT:-5432}.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  "$bin/initdb" -D "$PGDATA" -U outguard --pwfile="$POSTGRES_PASSWORD_FILE" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256
  echo "CREATE DATABASE outguard OWNER outguard;" | "$bin/postgres" --single -D "$PGDATA" postgres
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses=127.0.0.1 -c "port=${PGPORT:-5432}" \
  -c unix_socket_directories=/tmp
