# Sourced by scripts/test: a throwaway PostgreSQL server for tests/store and the other
# PostgreSQL tests.
#
# Exports SETPEER_TEST_POSTGRES_URL (plus _DATA, _BIN and _USER, which
# tests/store/test_postgres.py uses to stop and restart the server) and removes the
# cluster when the sourcing shell exits. Does nothing when SETPEER_NO_POSTGRES=1 or
# when SETPEER_TEST_POSTGRES_URL is already set (an outside server, or sourced twice).
#
# Durability stays on: fsync is NOT turned off, the tests check commit semantics.
# Only initdb's own final sync is skipped (--no-sync): a crash during the test run
# loses a throwaway cluster, nothing else.

_setpeer_pg_main() {
  local bin="" dir candidate runas=() port url

  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ] && [ -x "$candidate/postgres" ]; then
      bin=$candidate; break
    fi
  done
  if [ -z "$bin" ] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 \
      && command -v postgres >/dev/null 2>&1; then
    bin=$(dirname "$(command -v initdb)")
  fi
  if [ -z "$bin" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "PostgreSQL server binaries not found (initdb, pg_ctl, postgres); install" \
        "postgresql or set SETPEER_NO_POSTGRES=1" >&2
      return 1
    fi
    echo "== installing postgresql (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -n 1)
    if [ -z "$bin" ]; then echo "postgresql installed but no server binaries found" >&2; return 1; fi
  fi

  dir=$(mktemp -d "${TMPDIR:-/tmp}/setpeer-pg.XXXXXX")
  _SETPEER_PG_DIR=$dir
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: run it as a system user that owns the folder.
    if ! id postgres >/dev/null 2>&1; then
      useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    chown postgres: "$dir"
    runas=(runuser -u postgres --)
  fi
  _SETPEER_PG_RUNAS=("${runas[@]}")
  _SETPEER_PG_BIN=$bin

  "${runas[@]}" "$bin/initdb" -D "$dir/data" -U setpeer --auth=trust -E UTF8 \
    --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # In postgresql.conf, not on pg_ctl's command line, so a plain `pg_ctl start` (the
  # restart test) brings the server back on the same port.
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
EOF
  "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  url="postgresql://setpeer@127.0.0.1:$port/setpeer_test"
  "$bin/psql" -q -X -h 127.0.0.1 -p "$port" -U setpeer -d postgres \
    -c "CREATE DATABASE setpeer_test" >/dev/null
  export SETPEER_TEST_POSTGRES_URL=$url
  export SETPEER_TEST_POSTGRES_DATA=$dir/data
  export SETPEER_TEST_POSTGRES_BIN=$bin
  export SETPEER_TEST_POSTGRES_USER=${runas:+postgres}
  echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') for tests at $url"
}

_setpeer_pg_cleanup() {
  if [ -n "${_SETPEER_PG_DIR:-}" ]; then
    if [ -f "$_SETPEER_PG_DIR/data/postmaster.pid" ]; then
      "${_SETPEER_PG_RUNAS[@]}" "$_SETPEER_PG_BIN/pg_ctl" -D "$_SETPEER_PG_DIR/data" \
        -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$_SETPEER_PG_DIR"
    _SETPEER_PG_DIR=""
  fi
}

if [ "${SETPEER_NO_POSTGRES:-}" != 1 ] && [ -z "${SETPEER_TEST_POSTGRES_URL:-}" ]; then
  _SETPEER_PG_DIR=""
  _SETPEER_PG_RUNAS=()
  # Keep whatever EXIT trap the sourcing script already has, and run ours after it.
  _setpeer_pg_prev_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\\1/")
  trap "${_setpeer_pg_prev_trap:+$_setpeer_pg_prev_trap; }_setpeer_pg_cleanup" EXIT
  if ! _setpeer_pg_main; then
    _setpeer_pg_cleanup
    echo "could not start a test PostgreSQL (set SETPEER_NO_POSTGRES=1 to skip its tests)" >&2
    exit 1
  fi
fi
