# Scenarios storage-kill, tracker-kill, both-trackers-kill (sourced by Scripts/chaos).
#
# Files uploaded before the trial (and on both group1 members) are read in loops through a mount
# (direct_io and a 3 MiB block cache, so reads reach the cluster) and with `fdfs download`, while
# a tree is written through a second mount and `fdfs upload` runs in a loop. At a random moment
# the victims get kill -9 and come back 1-4 s later. Then: every acknowledged write must read
# back, every failure must have been EIO or ENOSPC, and every failed write must succeed when
# written again.

trial_storage_kill() { server_kill_trial storage-kill "$1" "$(pick s1 s2)"; }
trial_tracker_kill() { server_kill_trial tracker-kill "$1" "$(pick tracker tracker2)"; }
trial_both_trackers_kill() { server_kill_trial both-trackers-kill "$1" tracker tracker2; }

server_kill_trial() {
    local scenario="$1" trial="$2"; shift 2
    local victims=("$@") t="$WORK/logs/$scenario-$trial" i id sha pids=() writer reads
    mkdir -p "$WORK/logs" "$t.files"
    [ -e "$WORK/rd/pid" ] || mount_start rd "direct_io,cache_size=3M"
    [ -e "$WORK/wr/pid" ] || mount_start wr
    : > "$t.set"
    for i in 1 2 3 4; do
        head -c "$(( (RANDOM % 6 + 1) * 1000000 + RANDOM ))" /dev/urandom > "$t.files/r$i"
        id=$(fdfs_cli upload --group group1 "$t.files/r$i") || die "preparing $scenario: upload failed"
        echo "$id" >> "$WORK/known-ids"
        echo "$id $(sha256sum < "$t.files/r$i" | cut -d' ' -f1)" >> "$t.set"
    done
    wait_replicated "$t.set" || die "preparing $scenario: the read set did not reach both group1 members"

    rm -f "$t.stop"
    background $PY "$CHAOS_LIB/client_loops.py" read-mount "$(mnt rd)" "$t.set" "$t.read-mount" "$t.stop"; pids+=($!)
    background $PY "$CHAOS_LIB/client_loops.py" read-client "$CONF" "$t.set" "$t.read-client" "$t.stop"; pids+=($!)
    background $PY "$CHAOS_LIB/client_loops.py" upload "$CONF" "$t.files" "$t.upload" "$t.stop"; pids+=($!)
    background $PY "$CHAOS_LIB/tree_writer.py" "$t.write" "$(mnt wr)/group1/chaos-$trial-$scenario" \
        --seed "$RANDOM" --small 40 --large 1 --large-mb 20 30
    writer=$!
    sleep "$(rand 0.5 2.5)"
    for i in "${victims[@]}"; do node_kill "$i"; done
    sleep "$(rand 1 4)"
    for i in "${victims[@]}"; do node_start "$i"; done
    sleep 1
    touch "$t.stop"
    for i in "${pids[@]}"; do wait_child "$i" 120; done
    wait_child "$writer" 300

    reads=$(cat "$t.read-mount" "$t.read-client" | grep -c '^fail ')
    if [ "$scenario" = both-trackers-kill ]; then note "$scenario" reads-failed-no-tracker "$reads"; else count "$scenario" reads-failed "$reads"; fi
    note "$scenario" reads "$(cat "$t.read-mount" "$t.read-client" | wc -l)"
    count "$scenario" unclear-errors "$(awk '$1 == "fail" && $3 != "EIO" && $3 != "ENOSPC"' "$t.write" | tee "$t.unclear" | wc -l)"
    note "$scenario" writes-failed "$(( $(grep -c '^fail ' "$t.write") + $(grep -c '^fail ' "$t.upload") ))"
    note "$scenario" writes-acked "$(( $(grep -c '^ok ' "$t.write") + $(grep -c '^ok ' "$t.upload") ))"
    # Retries after the restart: every write that failed is written again and must succeed.
    count "$scenario" retries-failed "$($PY "$CHAOS_LIB/tree_writer.py" "$t.write" --retry)"
    count "$scenario" retries-failed "$($PY "$CHAOS_LIB/client_loops.py" retry "$CONF" "$t.upload" 2>>"$t.verify")"
    count_line "$scenario" "$($PY "$CHAOS_LIB/verify_tree.py" "$t.write" "$(mnt wr)/group1/chaos-$trial-$scenario" 2>>"$t.verify")"
    count "$scenario" lost "$($PY "$CHAOS_LIB/client_loops.py" check "$CONF" "$t.upload" 2>>"$t.verify")"
    awk '$1 == "ok" { print $2 }' "$t.upload" >> "$WORK/known-ids"
    rm -rf "$(mnt wr)/group1/chaos-$trial-$scenario" "$t.files"
}

# wait_replicated SET: until both group1 members hold every file ID of SET (30 s at most).
wait_replicated() {
    local deadline=$((SECONDS + 30)) id missing
    while [ $SECONDS -lt $deadline ]; do
        missing=0
        while read -r id _; do
            for n in s1 s2; do [ -e "$CLUSTER/$n/store0/data/${id#group1/M00/}" ] || missing=1; done
        done < "$1"
        [ "$missing" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}
