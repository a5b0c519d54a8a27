# Start Redis and PostgreSQL on 127.0.0.1 if they are not answering; install them from Debian if missing.
# Sourced by scripts/test and scripts/run-example. PostgreSQL gets trust auth on 127.0.0.1 and a
# database "test", as the test fixtures expect (DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test).

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # wait_for <description> <command…>: poll up to 30 s
    local what=$1; shift
    for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
    echo "error: $what did not come up" >&2; return 1
}

redis_answers() { python3 - <<'PY'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
        s.sendall(b"PING\r\n"); sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
PY
}

ensure_redis() {
    redis_answers && return 0
    command -v redis-server >/dev/null || apt_install redis-server
    echo "starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_for "Redis on 127.0.0.1:6379" redis_answers
}

postgres_answers() { pg_isready -q -h 127.0.0.1 -p 5432; }

ensure_postgres() {
    command -v pg_isready >/dev/null || [ -d /usr/lib/postgresql ] || apt_install postgresql
    export PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)"
    if ! postgres_answers; then
        local version; version=$(ls /etc/postgresql | tail -1)
        local hba="/etc/postgresql/$version/main/pg_hba.conf"
        if ! as_root grep -q "^host all all 127.0.0.1/32 trust" "$hba"; then
            as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
        fi
        echo "starting PostgreSQL $version on 127.0.0.1:5432"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
        wait_for "PostgreSQL on 127.0.0.1:5432" postgres_answers
    fi
    if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
        psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null
    fi
}

ensure_fleet_tools() {  # what the scale-out tests start themselves: pgbouncer, sentinels, network namespaces
    command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || apt_install pgbouncer
    command -v redis-sentinel >/dev/null || apt_install redis-sentinel
    command -v ip >/dev/null || [ -x /usr/sbin/ip ] || apt_install iproute2
    # The fleet's hosts: unshare (UTS/PID namespaces) and runuser (PostgreSQL clusters of their own).
    command -v unshare >/dev/null && command -v runuser >/dev/null || apt_install util-linux
}
