#!/bin/bash
# Creates tidemark's least-privilege accounts on the first start of an empty MySQL datadir
# (/docker-entrypoint-initdb.d). TIDEMARK_ROLE says which server this is:
#   primary  tidemark_cap:   SELECT, REPLICATION SLAVE, REPLICATION CLIENT (read tables, stream the binlog);
#            plus an empty `shop` schema for the demo to write into
#   replica  tidemark_apply: row changes and DDL on every schema (applying includes schema changes and
#            tidemark's own progress schema), no administrative privileges
# Passwords come from the environment (docker-compose.yml), never from this file. mysql_native_password
# keeps every client library able to log in without TLS; MySQL 8.0 still supports it.
# The entrypoint may source this file rather than run it, so it changes no shell options.

tidemark_sql_string() { printf "'%s'" "${1//\'/\'\'}"; }

tidemark_accounts_sql() {
  case "${TIDEMARK_ROLE:-}" in
    primary)
      cat <<SQL
CREATE USER IF NOT EXISTS 'tidemark_cap'@'%'
  IDENTIFIED WITH mysql_native_password BY $(tidemark_sql_string "${TIDEMARK_SOURCE_PASSWORD:?}");
GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'tidemark_cap'@'%';
CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4;
SQL
      ;;
    replica)
      cat <<SQL
CREATE USER IF NOT EXISTS 'tidemark_apply'@'%'
  IDENTIFIED WITH mysql_native_password BY $(tidemark_sql_string "${TIDEMARK_TARGET_PASSWORD:?}");
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, CREATE VIEW, SHOW VIEW, TRIGGER
  ON *.* TO 'tidemark_apply'@'%';
SQL
      ;;
    *)
      echo "10-tidemark-accounts.sh: TIDEMARK_ROLE must be primary or replica" >&2
      return 1
      ;;
  esac
}

tidemark_accounts() {
  local sql
  sql="$(tidemark_accounts_sql)" || return 1
  # During initialization the entrypoint's temporary server listens on the socket only.
  MYSQL_PWD="${MYSQL_ROOT_PASSWORD}" mysql --protocol=socket -uroot <<<"$sql" || return 1
  echo "10-tidemark-accounts.sh: tidemark accounts created (${TIDEMARK_ROLE})"
}

tidemark_accounts || exit 1
