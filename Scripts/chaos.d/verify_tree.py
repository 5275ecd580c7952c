#!/usr/bin/env python3
"""Checks a tree written by tree_writer.py (through a mount, after a crash and recovery, or
after servers were killed) against the writer's log.

    verify_tree.py LOG ROOT

Prints one line of counts (each should be 0), details on stderr:
    lost      acknowledged (ok) files that are missing
    corrupt   acknowledged files whose content differs
    dangling  names under ROOT that cannot be read (EIO, ...): a name without its cluster file
              (a directory that cannot be listed counts too)
    torn      names never acknowledged whose content is not what was being written
"""
import hashlib
import os
import sys


def parse(log_path):
    """Per path: the SHA256 of the last acknowledged write, and of every write begun."""
    acked, begun = {}, {}
    with open(log_path) as log:
        for line in log:
            parts = line.split()
            if len(parts) < 3:
                continue  # a line the kill cut short
            event, path, value = parts[:3]
            if event == "ok":
                acked[path] = value
            elif event == "begin":
                begun.setdefault(path, set()).add(value)
    return acked, begun


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main():
    log_path, root = sys.argv[1], sys.argv[2]
    acked, begun = parse(log_path)
    counts = {"lost": 0, "corrupt": 0, "dangling": 0, "torn": 0}
    present = {}
    def unreadable(error):
        counts["dangling"] += 1
        print("dangling: %s (%s)" % (error.filename, error.strerror), file=sys.stderr)

    for directory, _, names in os.walk(root, onerror=unreadable):
        for name in names:
            path = os.path.join(directory, name)
            try:
                present[path] = sha256(path)
            except OSError as error:
                counts["dangling"] += 1
                print("dangling: %s (%s)" % (path, error.strerror), file=sys.stderr)
    for path, sha in acked.items():
        if path not in present:
            if not os.path.lexists(path):
                counts["lost"] += 1
                print("lost: %s" % path, file=sys.stderr)
        elif present[path] != sha and present[path] not in begun.get(path, ()):
            counts["corrupt"] += 1
            print("corrupt: %s" % path, file=sys.stderr)
    for path, sha in present.items():
        if path not in acked and sha not in begun.get(path, ()):
            counts["torn"] += 1
            print("torn: %s (never acknowledged, content matches no write)" % path, file=sys.stderr)
    print(" ".join("%s=%d" % item for item in counts.items()))


if __name__ == "__main__":
    main()
