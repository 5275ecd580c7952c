# Shared by the Scripts/chaos scenarios: the cluster, mounts, tmpfs mounts, random numbers and
# the table of counts. Source it after lib.sh with WORK and CLUSTER set; do not run it.

PY=python3
declare -A COUNTS=()      # "scenario key" -> count
declare -a COUNT_KEYS=()  # "scenario key" in first-seen order
declare -A INFO_KEYS=()   # keys that are information, not violations
declare -a TMPFS_MOUNTS=()
declare -a CHILD_PIDS=()

# count SCENARIO KEY N: adds N to a violation count (one that should stay 0).
count() {
    local key="$1 $2"
    [ -n "${COUNTS[$key]+x}" ] || COUNT_KEYS+=("$key")
    COUNTS[$key]=$(( ${COUNTS[$key]:-0} + $3 ))
}

# note SCENARIO KEY N: adds N to a count that is information (e.g. closes that failed cleanly).
note() { INFO_KEYS[$2]=1; count "$@"; }

# count_line SCENARIO "a=1 b=2": counts every key=value of a checker's output line.
count_line() {
    local scenario="$1" pair
    for pair in $2; do count "$scenario" "${pair%%=*}" "${pair#*=}"; done
}

print_table() {
    local scenario key violations=0 line
    printf '\n%-20s %s\n' "scenario" "counts (all but trials and [information] must be 0)"
    for scenario in "${ALL_SCENARIOS[@]}"; do
        line=""
        for key in "${COUNT_KEYS[@]}"; do
            [ "${key%% *}" = "$scenario" ] || continue
            local name="${key#* }" value="${COUNTS[$key]}"
            if [ "$name" = trials ] || [ -n "${INFO_KEYS[$name]:-}" ]; then
                [ "$name" = trials ] && line="trials=$value$line" || line="$line [$name=$value]"
            else
                line="$line $name=$value"
                violations=$((violations + value))
            fi
        done
        [ -n "$line" ] && printf '%-20s %s\n' "$scenario" "$line"
    done
    echo
    if [ "$violations" -eq 0 ]; then log "no violations"; else log "$violations violations (logs in $WORK; rerun with -k to keep them)"; KEEP=true; fi
    [ "$violations" -eq 0 ]
}

# rand A B: a random decimal number in [A, B].
rand() { awk -v seed="$RANDOM$RANDOM" -v a="$1" -v b="$2" 'BEGIN { srand(seed); printf "%.2f\n", a + rand() * (b - a) }'; }

# pick WORD...: one of the words at random.
pick() { local words=("$@"); echo "${words[RANDOM % ${#words[@]}]}"; }

# tmpfs_mount DIR SIZE: a tmpfs of SIZE at DIR, unmounted by teardown.
tmpfs_mount() {
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2" tmpfs "$1" || die "cannot mount a tmpfs on $1"
    TMPFS_MOUNTS+=("$1")
}

start_cluster() {
    # group2's single member stores on a small tmpfs, so full-disk can fill it.
    tmpfs_mount "$CLUSTER/s3/store0" 96m
    Scripts/cluster start "$CLUSTER" >/dev/null || die "the cluster did not start (logs in $CLUSTER/logs)"
    # Mounts and the fdfs client know both trackers, so losing one is survivable.
    { echo "connect_timeout = 2"; echo "network_timeout = 10"
      echo "tracker_server = 127.0.0.1:$FDFS_TRACKER_PORT"
      echo "tracker_server = 127.0.0.1:$((FDFS_TRACKER_PORT + 1))"; } > "$CLUSTER/client-both.conf"
    CONF="$CLUSTER/client-both.conf"
    : > "$WORK/known-ids"
}

# fdfs_cli COMMAND ARGS...: the fdfs command line against this cluster (both trackers).
fdfs_cli() { local command="$1"; shift; timeout 60 "$FDFS_BIN_DIR/fdfs" "$command" -c "$CONF" "$@"; }

# node_kill NODE / node_start NODE: one cluster node (tracker, tracker2, s1, s2, s3).
node_kill() { Scripts/cluster node-kill "$1" "$CLUSTER" >/dev/null 2>&1; }
node_start() { FDFS_CLUSTER_TIMEOUT=120 Scripts/cluster node-start "$1" "$CLUSTER" >/dev/null || log "node-start $1 failed (logs in $CLUSTER/logs)"; }

# mount_start NAME [OPTIONS]: fdfs-mount at $WORK/NAME/mnt with state in $WORK/NAME/state.
mount_start() {
    local name="$1" options="state_dir=$WORK/$1/state${2:+,$2}"
    mkdir -p "$WORK/$name/mnt"
    echo "$options" > "$WORK/$name/options"
    "$FDFS_BIN_DIR/fdfs-mount" "$WORK/$name/mnt" -c "$CONF" -f -o "$options" >>"$WORK/$name/mount.log" 2>&1 &
    echo $! > "$WORK/$name/pid"
    local _
    for _ in $(seq 200); do
        mountpoint -q "$WORK/$name/mnt" && return 0
        kill -0 "$(cat "$WORK/$name/pid")" 2>/dev/null || break
        sleep 0.1
    done
    die "fdfs-mount $name did not mount: $(tail -n 5 "$WORK/$name/mount.log")"
}

# mount_restart NAME: the same mount again, with its last options.
mount_restart() { mount_start "$1" "$(cut -d, -f2- "$WORK/$1/options" | grep -v '^state_dir=' || true)"; }

mnt() { echo "$WORK/$1/mnt"; }
state() { echo "$WORK/$1/state"; }

# unmount_dead NAME: clears the kernel mount a killed fdfs-mount left behind.
unmount_dead() {
    local dir="$WORK/$1/mnt"
    if mountpoint -q "$dir" 2>/dev/null || grep -q " $dir fuse" /proc/mounts; then
        fusermount3 -u "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null || true
    fi
}

# mount_crash NAME: kill -9 of the mount process. The dead mount stays (programs using it get
# ENOTCONN) until unmount_dead: clear it only once they have stopped, or they would go on
# writing into the directory below the mount point.
mount_crash() {
    local pid
    pid=$(cat "$WORK/$1/pid" 2>/dev/null) || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$WORK/$1/pid"
}

# mount_kill NAME: mount_crash, then the dead mount is cleared.
mount_kill() { mount_crash "$1"; unmount_dead "$1"; }

# mount_stop NAME: SIGTERM (a clean unmount), SIGKILL after 30 s.
mount_stop() {
    local pid _
    pid=$(cat "$WORK/$1/pid" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    mount_kill "$1"
}

# wait_recovered NAME [SECONDS]: until the mount's journals are empty (uploads committed,
# deletions done, stream appenders removed); returns 1 at the deadline.
wait_recovered() {
    local deadline=$((SECONDS + ${2:-60}))
    while [ $SECONDS -lt $deadline ]; do
        [ "$($PY "$CHAOS_LIB/cluster_files.py" journals "$(state "$1")" 2>/dev/null)" = 0 ] && return 0
        sleep 0.5
    done
    return 1
}

# background COMMAND...: starts a child that teardown ends if it is still running.
background() { "$@" & CHILD_PIDS+=($!); }

# wait_child PID SECONDS: waits for a child; kills it after SECONDS.
wait_child() {
    local pid="$1" deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null && log "child $pid killed after $2 s"
    wait "$pid" 2>/dev/null
}

teardown() {
    local status=$? pid name
    for pid in "${CHILD_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for name in "$WORK"/*/pid; do
        [ -e "$name" ] && mount_stop "$(basename "$(dirname "$name")")"
    done
    for name in "$WORK"/*/mnt; do [ -d "$name" ] && unmount_dead "$(basename "$(dirname "$name")")"; done
    Scripts/cluster stop "$CLUSTER" >/dev/null 2>&1 || true
    for name in "${TMPFS_MOUNTS[@]}"; do umount "$name" 2>/dev/null || umount -l "$name" 2>/dev/null || true; done
    if [ "$KEEP" = true ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
