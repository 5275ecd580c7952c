# Scenario sync-kill (sourced by Scripts/chaos): kill -9 of a group1 member while it replicates.
#
# Odd trials: `fdfs upload` runs in a loop while one member is killed and restarted (uploads go
# on to the survivor and must reach the other). Even trials: one member is stopped, its store
# and base directory wiped, and started again so that it full-syncs from the other; during the
# sync the source or the new member is killed and restarted. Then both members must hold the
# same files byte for byte and be ACTIVE on both trackers within CHAOS_CONVERGE_SECONDS (120),
# and every acknowledged upload must download.

CONVERGE_SECONDS="${CHAOS_CONVERGE_SECONDS:-120}"

trial_sync_kill() {
    if [ $(($1 % 2)) = 1 ]; then sync_kill_replication "$1"; else sync_kill_full_sync "$1"; fi
    local deadline=$((SECONDS + CONVERGE_SECONDS)) diverged=1
    while [ $SECONDS -lt $deadline ]; do
        diverged=$($PY "$CHAOS_LIB/cluster_files.py" diverged "$CLUSTER/s1/store0" "$CLUSTER/s2/store0" 2>"$WORK/logs/sync-$1.diverged")
        [ "$diverged" = 0 ] && break
        sleep 1
    done
    count sync-kill not-converged "$diverged"
    while [ $SECONDS -lt $deadline ] && ! all_active; do sleep 1; done
    count sync-kill not-active "$(all_active && echo 0 || echo 1)"
    note sync-kill files "$($PY "$CHAOS_LIB/cluster_files.py" list "group1/M00=$CLUSTER/s1/store0" | wc -l)"
}

# all_active: both trackers list all three storages as ACTIVE.
all_active() {
    local conf
    for conf in client.conf client-classic.conf; do
        [ "$("$FDFS_BIN_DIR/fdfs" monitor -c "$CLUSTER/$conf" --json 2>/dev/null | grep -c '"status" : "ACTIVE"')" -ge 3 ] || return 1
    done
}

sync_kill_replication() {
    local t="$WORK/logs/sync-$1" uploader victim
    mkdir -p "$t.files"
    rm -f "$t.stop"
    background $PY "$CHAOS_LIB/client_loops.py" upload "$CONF" "$t.files" "$t.upload" "$t.stop"
    uploader=$!
    sleep "$(rand 0.5 2)"
    victim=$(pick s1 s2)
    node_kill "$victim"
    sleep "$(rand 0.5 2)"
    node_start "$victim"
    sleep "$(rand 0.5 2)"
    touch "$t.stop"
    wait_child "$uploader" 120
    count sync-kill lost "$($PY "$CHAOS_LIB/client_loops.py" check "$CONF" "$t.upload" 2>>"$t.verify")"
    note sync-kill uploads-acked "$(grep -c '^ok ' "$t.upload")"
    awk '$1 == "ok" { print $2 }' "$t.upload" >> "$WORK/known-ids"
    rm -rf "$t.files"
}

sync_kill_full_sync() {
    local new source victim starter
    new=$(pick s1 s2)
    source=$([ "$new" = s1 ] && echo s2 || echo s1)
    Scripts/cluster node-stop "$new" "$CLUSTER" >/dev/null
    rm -rf "${CLUSTER:?}/$new/store0/"* "${CLUSTER:?}/$new/base/"*
    background env FDFS_CLUSTER_TIMEOUT=10 Scripts/cluster node-start "$new" "$CLUSTER" >/dev/null 2>&1
    starter=$!
    sleep "$(rand 0.2 3)"
    victim=$(pick "$new" "$source")
    node_kill "$victim"
    wait_child "$starter" 30
    sleep "$(rand 0.5 2)"
    node_start "$victim"
    node_start "$new"
    note sync-kill "killed-$([ "$victim" = "$new" ] && echo new-member || echo source)" 1
}
