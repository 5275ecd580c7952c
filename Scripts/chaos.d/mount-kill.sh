# Scenario mount-kill (sourced by Scripts/chaos): kill -9 of fdfs-mount during a tree copy.
#
# One mount (state dir kept across trials) writes a mixed tree with tree_writer.py; at a random
# moment (once the writer has begun a random one of its files, plus 0-1.5 s) the mount is killed, then remounted with the same state dir. Once its journals are
# empty the tree is checked against the writer's log (verify_tree.py) and the store paths
# against the mapping store (cluster_files.py leaks); then the tree is removed through the mount.

MOUNT_KILL_FILES=122  # what tree_writer writes below: 120 small and 2 large files

trial_mount_kill() {
    local trial="$1" dir log writer leaks _
    rm -f "$WORK/logs/mk-$trial.log"
    [ -e "$WORK/mk/pid" ] || mount_start mk
    dir="$(mnt mk)/group1/chaos-mk-$trial"
    log="$WORK/logs/mk-$trial.log"
    mkdir -p "$WORK/logs"
    $PY "$CHAOS_LIB/cluster_files.py" list $(store_args) > "$WORK/logs/mk-$trial.baseline"
    background $PY "$CHAOS_LIB/tree_writer.py" "$log" "$dir" --seed "$RANDOM" --small 120 --large 2 --large-mb 20 60
    writer=$!
    wait_for_begun "$log" $((RANDOM % MOUNT_KILL_FILES + 1)) "$writer"
    sleep "$(rand 0 1.5)"
    mount_crash mk
    wait_child "$writer" 60
    unmount_dead mk
    mount_restart mk
    count mount-kill recovery-unfinished "$(wait_recovered mk 120 && echo 0 || echo 1)"
    local counts
    counts=$($PY "$CHAOS_LIB/verify_tree.py" "$log" "$dir" 2>>"$WORK/logs/mk-$trial.verify")
    count_line mount-kill "$counts"
    for _ in $(seq 40); do
        leaks=$(leaked_files "$WORK/logs/mk-$trial.baseline" "$log" 2>"$WORK/logs/mk-$trial.leaks")
        [[ "$leaks" == "leaked=0 "* ]] && break
        sleep 0.5
    done
    count mount-kill leaked "$(echo "$leaks" | sed -n 's/^leaked=\([0-9]*\) .*/\1/p')"
    note mount-kill redone-duplicates "$(echo "$leaks" | sed -n 's/.* redone=\([0-9]*\)$/\1/p')"
    note mount-kill acked "$(grep -c '^ok ' "$log")"
    note mount-kill failed-by-kill "$(grep -c '^fail ' "$log")"
    # A tree with violations stays for a look (-k keeps it all).
    [[ "$counts" =~ ^lost=0\ corrupt=0\ dangling=0\ torn=0$ ]] || { KEEP=true; return; }
    rm -rf "$dir" 2>>"$WORK/logs/mk-$trial.verify" || count mount-kill rm-failed 1
}

# wait_for_begun LOG N PID: until the writer PID has begun its Nth file (or has exited).
wait_for_begun() {
    while kill -0 "$3" 2>/dev/null && [ "$(cat "$1" 2>/dev/null | grep -c '^begin ')" -lt "$2" ]; do sleep 0.05; done
}

# leaked_files BASELINE LOG: files on the store paths that were not there before the trial
# (BASELINE) and that no mapping store (of any mount of this run) and no fdfs client upload refers
# to; "redone" ones hold the bytes of a file of LOG whose close() the kill interrupted.
leaked_files() {
    local states=() name
    for name in "$WORK"/*/state; do [ -e "$name/mapping.db" ] && states+=("$name"); done
    $PY "$CHAOS_LIB/cluster_files.py" leaks $(store_args) --state "${states[@]}" --known "$WORK/known-ids" "$1" --redone "$2"
}

store_args() { echo "group1/M00=$CLUSTER/s1/store0 group1/M00=$CLUSTER/s2/store0 group2/M00=$CLUSTER/s3/store0"; }
