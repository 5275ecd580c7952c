#!/usr/bin/env python3
"""What the storages hold, read from their store paths, compared with the mounts' mapping stores
and with each other.

    cluster_files.py leaks STORE... --state STATE_DIR... [--known FILE]... [--redone LOG]...
        files on the stores (STORE is GROUP/Mxx=DIR, e.g. group1/M00=.../s1/store0) that no name
        of any mapping store refers to, that no journal of one names (pending uploads, due
        deletions, streamed appenders), and that no KNOWN file lists (one file ID per line, e.g.
        uploads made with the fdfs client). Prints "leaked=N redone=M", the IDs on stderr:
        redone counts those whose bytes are those of a file a tree_writer.py LOG was closing
        when the mount died (the upload had reached the storage but its ID not the mapping
        store, and recovery uploaded the spool again: SEMANTICS.md, "Crash safety").
    cluster_files.py list STORE...
        the file IDs on the stores (for a baseline to pass as --known).
    cluster_files.py journals STATE_DIR
        rows in the journals (pending uploads, deletions, streams): 0 once recovery is done.
    cluster_files.py diverged DIR_A DIR_B
        files (by name and SHA256) that one store path has and the other has not, or holds with
        other bytes: 0 once a group's members have converged. Prints the count, names on stderr.
"""
import hashlib
import os
import sqlite3
import sys


def store_files(directory):
    """Relative names (HH/HH/name) of the files under DIRECTORY/data, metadata files included."""
    data = os.path.join(directory, "data")
    found = []
    for first in sorted(os.listdir(data)) if os.path.isdir(data) else []:
        if len(first) != 2 or not os.path.isdir(os.path.join(data, first)):
            continue
        for second in os.listdir(os.path.join(data, first)):
            for name in os.listdir(os.path.join(data, first, second)):
                found.append("%s/%s/%s" % (first, second, name))
    return found


def query(state_dir, sql):
    database = sqlite3.connect("file:%s/mapping.db?mode=ro" % state_dir, uri=True, timeout=10)
    try:
        return database.execute(sql).fetchall()
    finally:
        database.close()


def referenced(state_dir):
    ids = set()
    for sql in ("SELECT file_id FROM entries WHERE file_id IS NOT NULL",
                "SELECT old_file_id FROM pending", "SELECT new_file_id FROM pending",
                "SELECT file_id FROM deletions", "SELECT file_id FROM streams"):
        ids.update(row[0] for row in query(state_dir, sql) if row[0])
    return ids


def leaks(args):
    stores, states, known, redone_shas = [], [], set(), set()
    mode = "store"
    for arg in args:
        if arg in ("--state", "--known", "--redone"):
            mode = arg[2:]
        elif mode == "redone":
            redone_shas |= interrupted_writes(arg)
        elif mode == "store":
            prefix, directory = arg.split("=", 1)
            stores.append((prefix, directory))
        elif mode == "state":
            states.append(arg)
        else:
            with open(arg) as f:
                known.update(line.strip() for line in f if line.strip())
    wanted = set(known)
    for state in states:
        wanted |= referenced(state)
    leaked = set()
    for prefix, directory in stores:
        for name in store_files(directory):
            file_id = "%s/%s" % (prefix, name)
            if not name.endswith("-m") and file_id not in wanted:
                leaked.add(file_id)
    redone = set()
    for prefix, directory in stores:
        for file_id in leaked:
            path = os.path.join(directory, "data", file_id[len(prefix) + 1:])
            if file_id.startswith(prefix + "/") and os.path.exists(path) and sha256(path) in redone_shas:
                redone.add(file_id)
    for file_id in sorted(leaked):
        print("%s: %s" % ("redone" if file_id in redone else "leaked", file_id), file=sys.stderr)
    print("leaked=%d redone=%d" % (len(leaked - redone), len(redone)))


def interrupted_writes(log_path):
    """SHA256 of the files a tree_writer.py log began but did not see acknowledged."""
    begun, last = {}, {}
    with open(log_path) as log:
        for line in log:
            parts = line.split()
            if len(parts) >= 3:
                last[parts[1]] = parts[0]
                if parts[0] == "begin":
                    begun[parts[1]] = parts[2]
    return {sha for path, sha in begun.items() if last[path] != "ok"}


def list_ids(args):
    for arg in args:
        prefix, directory = arg.split("=", 1)
        for name in store_files(directory):
            if not name.endswith("-m"):
                print("%s/%s" % (prefix, name))


def journals(state_dir):
    print(sum(query(state_dir, "SELECT COUNT(*) FROM %s" % table)[0][0] for table in ("pending", "deletions", "streams")))


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def diverged(a, b):
    def contents(directory):
        result = {}
        for name in store_files(directory):
            try:
                result[name] = sha256(os.path.join(directory, "data", name))
            except OSError:
                result[name] = None  # deleted while listed
        return result
    left, right = contents(a), contents(b)
    different = sorted(name for name in set(left) | set(right) if left.get(name) != right.get(name))
    for name in different:
        print("diverged: %s (%s)" % (name, "only in A" if name not in right else "only in B" if name not in left else "bytes differ"), file=sys.stderr)
    print(len(different))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "leaks":
        leaks(args)
    elif command == "list":
        list_ids(args)
    elif command == "journals":
        journals(args[0])
    elif command == "diverged":
        diverged(args[0], args[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
