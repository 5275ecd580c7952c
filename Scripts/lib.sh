# Shared helpers for the Scripts/ commands. Source it; do not run it.

# The repository root.
FDFS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs Debian packages that are missing (runs apt-get update once, only when needed).
ensure_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

# Everything the build, the mount and the tests need from Debian.
ensure_system_packages() {
    ensure_apt libfuse3-dev fuse3 zlib1g-dev libsqlite3-dev rsync attr python3-venv psmisc procps
}

# A Python venv with the third-party FastDFS client used by the tests.
ensure_python_clients() {
    local venv="$FDFS_ROOT/.build-venv"
    if [ ! -x "$venv/bin/python" ]; then
        log "creating $venv"
        python3 -m venv "$venv" || die "python3 -m venv failed"
    fi
    if ! "$venv/bin/python" -c 'import fdfs_client' 2>/dev/null; then
        log "pip install py3Fdfs"
        "$venv/bin/pip" install -q py3Fdfs || die "pip install py3Fdfs failed"
    fi
    export FDFS_TEST_PYTHON="$venv/bin/python"
}

# Builds every product (debug unless FDFS_CONFIGURATION=release) and exports FDFS_BIN_DIR.
build_products() {
    local configuration="${FDFS_CONFIGURATION:-debug}"
    log "swift build -c $configuration"
    (cd "$FDFS_ROOT" && swift build -c "$configuration" 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Linking|Wrapping|Applying)' ) || die "swift build failed"
    FDFS_BIN_DIR="$(cd "$FDFS_ROOT" && swift build -c "$configuration" --show-bin-path)"
    export FDFS_BIN_DIR
}

# Debian's PostgreSQL server (installed when missing); sets PG_BIN to its newest bin directory.
ensure_postgres() {
    ensure_apt postgresql
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [ -x "$PG_BIN/initdb" ] || die "no initdb under /usr/lib/postgresql: is the postgresql package installed?"
}

# Is TCP port $1 on loopback free?
port_free() {
    python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# A loopback port nobody listens on.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a throw-away PostgreSQL server for the tests: initdb into a new temporary directory,
# listening on 127.0.0.1 only, on $FDFS_TEST_POSTGRES_PORT when that is free or else any free
# port, trusting local connections (no password), with a database fdfs_test. Runs as the
# postgres user when we are root (initdb refuses root). Exports FDFS_TEST_POSTGRES_URL and
# FDFS_TEST_POSTGRES_DIR; stop_test_postgres stops it and removes the directory.
start_test_postgres() {
    ensure_postgres
    local dir port
    dir="$(mktemp -d /tmp/fdfs-test-postgres.XXXXXX)" || die "mktemp failed"
    export FDFS_TEST_POSTGRES_DIR="$dir"
    port="${FDFS_TEST_POSTGRES_PORT:-}"
    if [ -z "$port" ] || ! port_free "$port"; then port="$(free_port)"; fi
    local as=()
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
        as=(runuser -u postgres --)
    fi
    log "starting a throw-away PostgreSQL in $dir on 127.0.0.1:$port"
    "${as[@]}" "$PG_BIN/initdb" -D "$dir/data" -U fdfs --auth=trust --no-locale -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    "${as[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null \
        || { cat "$dir/server.log" >&2; die "PostgreSQL did not start (log: $dir/server.log)"; }
    "${as[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U fdfs fdfs_test || die "createdb fdfs_test failed"
    export FDFS_TEST_POSTGRES_URL="postgres://fdfs@127.0.0.1:$port/fdfs_test?sslmode=disable"
}

# Stops the server start_test_postgres started (if any) and removes its directory.
stop_test_postgres() {
    local dir="${FDFS_TEST_POSTGRES_DIR:-}"
    [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
    local as=()
    [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
        || "${as[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    unset FDFS_TEST_POSTGRES_DIR
}
