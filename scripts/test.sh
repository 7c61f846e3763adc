#!/usr/bin/env bash
# Runs keyward's whole test suite: every crate, on SQLite and (when reachable) PostgreSQL.
# KEYWARD_TEST_POSTGRES_URL picks the server (default postgres://postgres@127.0.0.1:5432/test);
# KEYWARD_REQUIRE_POSTGRES=1 makes an unreachable PostgreSQL a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${KEYWARD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=5432
if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  echo "test.sh: PostgreSQL is reachable at $host:$port: every test runs on SQLite and on PostgreSQL"
elif [ "${KEYWARD_REQUIRE_POSTGRES:-}" = "1" ]; then
  echo "test.sh: PostgreSQL is NOT reachable at $host:$port and KEYWARD_REQUIRE_POSTGRES=1: failing" >&2
  exit 1
else
  echo "test.sh: PostgreSQL is NOT reachable at $host:$port: only the SQLite half runs (set KEYWARD_REQUIRE_POSTGRES=1 to fail instead)"
fi

cargo test --workspace --locked "$@"
