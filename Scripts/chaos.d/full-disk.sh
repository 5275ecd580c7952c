# Scenario full-disk (sourced by Scripts/chaos): the spool, the block cache and a storage's store
# path run out of space. Each trial does all three:
#
# spool   a mount whose spool_dir is a 24 MiB tmpfs (spool_size far above it) writes small files,
#         then a 30-40 MiB one: that write or close must fail with ENOSPC, the spool must be
#         freed, the small files stay intact and new writes work.
# cache   a mount whose cache_dir is a 16 MiB tmpfs (cache_size far above it) reads a 40 MB file
#         twice: both reads must return the file's bytes.
# store   group2's only member stores on a 96 MiB tmpfs: after small files are written through a
#         mount, `fdfs upload` fills it (the upload that does not fit must fail with ENOSPC), a
#         20 MiB file written through the mount must fail at close() with ENOSPC; once the
#         fillers are deleted the mount's background retry must upload it and a retried
#         `fdfs upload` must succeed. The small files stay intact.

trial_full_disk() {
    local key
    mkdir -p "$WORK/logs"
    for key in unclear-errors spool-not-freed unhealthy-after cache-read-failed store-never-full retries-failed; do count full-disk "$key" 0; done
    full_disk_spool "$1"
    full_disk_cache "$1"
    full_disk_store "$1"
}

# expect_enospc SUBCHECK LOG: the log's failures must be ENOSPC, and there must be one.
expect_enospc() {
    local failures
    failures=$(awk '$1 == "fail"' "$2")
    [ -n "$failures" ] || { count full-disk "$1-no-error" 1; return; }
    count full-disk unclear-errors "$(echo "$failures" | awk '$3 != "ENOSPC"' | tee -a "$2.unclear" | wc -l)"
}

full_disk_spool() {
    local t="$WORK/logs/fd-spool-$1" dir used _
    if [ ! -e "$WORK/sp/pid" ]; then
        tmpfs_mount "$WORK/sp-spool" 24m
        mount_start sp "spool_dir=$WORK/sp-spool,spool_size=1G,stream_threshold=0"
    fi
    dir="$(mnt sp)/group1/chaos-fd-$1"
    $PY "$CHAOS_LIB/tree_writer.py" "$t.write" "$dir" --seed "$RANDOM" --small 10 --large 0 >/dev/null
    $PY "$CHAOS_LIB/tree_writer.py" "$t.big" "$dir/big" --seed "$RANDOM" --small 0 --large 1 --large-mb 30 40 >/dev/null
    expect_enospc spool "$t.big"
    for _ in $(seq 50); do
        used=$(df --output=used -k "$WORK/sp-spool" | tail -1 | tr -d ' ')
        [ "$used" -lt 1024 ] && break
        sleep 0.1
    done
    [ "$used" -lt 1024 ] || count full-disk spool-not-freed 1
    $PY "$CHAOS_LIB/tree_writer.py" "$t.after" "$dir/after" --seed "$RANDOM" --small 5 --large 0 >/dev/null
    count full-disk unhealthy-after "$(grep -c '^fail ' "$t.after")"
    cat "$t.write" "$t.big" "$t.after" > "$t.all"
    count_line full-disk "$($PY "$CHAOS_LIB/verify_tree.py" "$t.all" "$dir" 2>>"$t.verify")"
    rm -rf "$dir"
}

full_disk_cache() {
    local t="$WORK/logs/fd-cache-$1" id sha got round
    if [ ! -e "$WORK/cc/pid" ]; then
        tmpfs_mount "$WORK/cc-cache" 16m
        mount_start cc "cache_dir=$WORK/cc-cache,cache_size=1G,direct_io"
    fi
    head -c 40000000 /dev/urandom > "$t.file"
    sha=$(sha256sum < "$t.file" | cut -d' ' -f1)
    id=$(fdfs_cli upload --group group1 "$t.file") || die "full-disk cache: upload failed"
    echo "$id" >> "$WORK/known-ids"
    for round in 1 2; do
        got=$(timeout 120 sha256sum < "$(mnt cc)/$id" 2>>"$t.verify" | cut -d' ' -f1)
        [ "$got" = "$sha" ] || { count full-disk cache-read-failed 1; echo "round $round: $got" >> "$t.verify"; }
    done
    fdfs_cli delete "$id" >/dev/null 2>&1 || true
    rm -f "$t.file"
}

full_disk_store() {
    local t="$WORK/logs/fd-store-$1" dir fillers=() id i failed_filler="" big
    [ -e "$WORK/wr/pid" ] || mount_start wr
    dir="$(mnt wr)/group2/chaos-fd-$1"
    $PY "$CHAOS_LIB/tree_writer.py" "$t.write" "$dir" --seed "$RANDOM" --small 10 --large 0 >/dev/null
    head -c 16000000 /dev/urandom > "$t.filler"
    for i in $(seq 10); do
        if id=$(fdfs_cli upload --group group2 "$t.filler" 2>"$t.filler-error"); then
            fillers+=("$id")
        else
            failed_filler=yes
            grep -q ENOSPC "$t.filler-error" || { count full-disk unclear-errors 1; cat "$t.filler-error" >> "$t.verify"; }
            break
        fi
    done
    [ -n "$failed_filler" ] || count full-disk store-never-full 1
    $PY "$CHAOS_LIB/tree_writer.py" "$t.big" "$dir/big" --seed "$RANDOM" --small 0 --large 1 --large-mb 20 20 >/dev/null
    expect_enospc store "$t.big"
    for id in "${fillers[@]}"; do fdfs_cli delete "$id" >/dev/null 2>>"$t.verify" || count full-disk delete-failed 1; done
    # The mount retries the failed upload in the background every 2 s: it must land.
    wait_recovered wr 60 || count full-disk retries-failed 1
    big=$(awk '$1 == "begin" { print $2 }' "$t.big")
    getfattr --only-values -n user.fdfs.file_id "$big" > "$t.big-id" 2>>"$t.verify" && \
        [ "$(fdfs_cli download "$(cat "$t.big-id")" - | sha256sum | cut -d' ' -f1)" = "$(awk '$1 == "begin" { print $3 }' "$t.big")" ] \
        || count full-disk retries-failed 1
    if [ -n "$failed_filler" ]; then
        if id=$(fdfs_cli upload --group group2 "$t.filler" 2>>"$t.verify"); then fdfs_cli delete "$id" >/dev/null 2>&1 || true
        else count full-disk retries-failed 1; fi
    fi
    cat "$t.write" "$t.big" > "$t.all"
    count_line full-disk "$($PY "$CHAOS_LIB/verify_tree.py" "$t.all" "$dir" 2>>"$t.verify")"
    rm -rf "$dir" "$t.filler"
}
