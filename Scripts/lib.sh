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
