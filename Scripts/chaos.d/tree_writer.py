#!/usr/bin/env python3
"""Writes a mixed tree (many small files, a few large streamed ones, nested directories) into
DIR and logs, per file, whether its close() returned 0.

    tree_writer.py LOG DIR [--seed N] [--small N] [--large N] [--large-mb MIN MAX]
    tree_writer.py LOG --retry     writes again every file whose last event in LOG is a failure
                                   and prints how many failed again

LOG gets one line per event, flushed and fsynced before the next file starts:
    begin PATH SHA256 SEED SIZE   the writer is about to create PATH with content SHA256
    ok PATH SHA256         close() of PATH returned 0: the file is acknowledged
    fail PATH ERRNO        open, write or close failed with ERRNO (a name such as EIO)
The writer stops at the first error that means the mount is gone (ENOTCONN, ECONNABORTED), and
when DIR's parent is no longer on the device it was on at the start (the mount was cleared: the
writer must not go on writing into the directory below the mount point).
"""
import argparse
import errno
import hashlib
import os
import random
import sys

GONE = {errno.ENOTCONN, errno.ECONNABORTED, errno.ENODEV}
CHUNK = 1 << 20


def plan(rng, small, large, large_mb):
    """(relative path, size) of every file, in a shuffled order."""
    dirs = [""] + ["d%d" % i for i in range(4)] + ["d%d/e%d" % (i, j) for i in range(4) for j in range(3)]
    dirs += ["d0/e0/f%d" % i for i in range(3)]
    files = []
    for i in range(small):
        size = rng.choice([0, 1, rng.randrange(1, 4096), rng.randrange(4096, 256 << 10)])
        files.append((os.path.join(rng.choice(dirs), "s%03d.bin" % i), size))
    for i in range(large):
        files.append((os.path.join(rng.choice(dirs), "L%d.dat" % i), rng.randrange(large_mb[0] << 20, (large_mb[1] << 20) + 1)))
    rng.shuffle(files)
    return files


def content(seed, size):
    """Deterministic bytes for one file, produced in chunks (large files never sit in memory)."""
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(CHUNK, left)
        yield rng.randbytes(n)
        left -= n


def log_line(log, text):
    log.write(text + "\n")
    log.flush()
    os.fsync(log.fileno())


def write_file(path, seed, size):
    """Writes the file's content with os.write; raises OSError from open, write or close."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in content(seed, size):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
    except OSError:
        os.close(fd)
        raise
    os.close(fd)


def expected_sha(seed, size):
    digest = hashlib.sha256()
    for chunk in content(seed, size):
        digest.update(chunk)
    return digest.hexdigest()


def write_logged(log, path, seed, size):
    """Writes one file and logs its outcome; returns the errno of a failure (None when ok)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sha = expected_sha(seed, size)
        log_line(log, "begin %s %s %d %d" % (path, sha, seed, size))
        write_file(path, seed, size)
        log_line(log, "ok %s %s" % (path, sha))
        return None
    except OSError as error:
        log_line(log, "fail %s %s" % (path, errno.errorcode.get(error.errno, str(error.errno))))
        return error.errno


def retry(log_path):
    """Writes again every file whose last event is a failure; prints how many failed again."""
    last, plans = {}, {}
    with open(log_path) as log:
        for line in log:
            parts = line.split()
            if len(parts) >= 3:
                last[parts[1]] = parts[0]
            if len(parts) == 5 and parts[0] == "begin":
                plans[parts[1]] = (int(parts[3]), int(parts[4]))
    failed = 0
    with open(log_path, "a") as log:
        for path, event in last.items():
            if event == "fail" and path in plans:
                failed += write_logged(log, path, *plans[path]) is not None
    print(failed)
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("dir", nargs="?")
    parser.add_argument("--retry", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--small", type=int, default=120)
    parser.add_argument("--large", type=int, default=2)
    parser.add_argument("--large-mb", type=int, nargs=2, default=[20, 60])
    args = parser.parse_args()
    if args.retry:
        return retry(args.log)
    rng = random.Random(args.seed)
    parent = os.path.dirname(os.path.abspath(args.dir))
    device = os.stat(parent).st_dev
    with open(args.log, "a") as log:
        for index, (relative, size) in enumerate(plan(rng, args.small, args.large, args.large_mb)):
            try:
                if os.stat(parent).st_dev != device:
                    return 1
            except OSError:
                return 1
            if write_logged(log, os.path.join(args.dir, relative), args.seed * 100003 + index, size) in GONE:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
