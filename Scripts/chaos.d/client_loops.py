#!/usr/bin/env python3
"""Readers and writers that run while servers are killed, and the checks afterwards.

    client_loops.py read-mount   MNT SET LOG STOP      read every file of SET through the mount
    client_loops.py read-client  CONF SET LOG STOP     the same with `fdfs download`
    client_loops.py upload       CONF DIR LOG STOP     `fdfs upload` new random files to group1
    client_loops.py retry        CONF LOG              upload again every file whose upload failed
    client_loops.py check        CONF LOG              download every acknowledged upload

SET has one "FILE_ID SHA256" per line. Loops go round until the file STOP exists. LOG gets
"ok ID SHA256 [PATH]" or "fail ID|PATH REASON" per operation. `retry` and `check` print the
number of failures (retries that failed, acknowledged uploads missing or different).
The fdfs binary comes from $FDFS_BIN_DIR.
"""
import errno
import hashlib
import os
import random
import subprocess
import sys

FDFS = os.path.join(os.environ.get("FDFS_BIN_DIR", ""), "fdfs")


def log_line(log, text):
    log.write(text + "\n")
    log.flush()


def read_set(path):
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def mount_sha(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def client_sha(conf, file_id):
    result = subprocess.run([FDFS, "download", "-c", conf, file_id, "-"], capture_output=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace").strip().replace("\n", " ") or "exit %d" % result.returncode)
    return hashlib.sha256(result.stdout).hexdigest()


def read_loop(read, files, log_path, stop):
    with open(log_path, "a") as log:
        while not os.path.exists(stop):
            for file_id, sha in files:
                try:
                    got = read(file_id)
                    log_line(log, ("ok %s %s" if got == sha else "fail %s differs:%s") % (file_id, got))
                except OSError as error:
                    log_line(log, "fail %s %s" % (file_id, errno.errorcode.get(error.errno, str(error.errno))))
                except Exception as error:
                    log_line(log, "fail %s %s" % (file_id, str(error).replace(" ", "_")[:200]))


def upload(conf, path):
    result = subprocess.run([FDFS, "upload", "-c", conf, "--group", "group1", path], capture_output=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace").strip().replace(" ", "_")[:200] or "exit")
    return result.stdout.decode().strip()


def upload_loop(conf, directory, log_path, stop):
    os.makedirs(directory, exist_ok=True)
    rng = random.Random()
    with open(log_path, "a") as log:
        index = 0
        while not os.path.exists(stop):
            data = rng.randbytes(rng.randrange(1, 2 << 20))
            path = os.path.join(directory, "u%04d" % index)
            index += 1
            with open(path, "wb") as f:
                f.write(data)
            sha = hashlib.sha256(data).hexdigest()
            try:
                log_line(log, "ok %s %s %s" % (upload(conf, path), sha, path))
            except Exception as error:
                log_line(log, "fail %s %s" % (path, error))


def last_events(log_path):
    events = {}
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "ok" and len(parts) == 4:
                events[parts[3]] = parts
            elif parts and parts[0] == "fail" and len(parts) >= 2:
                events[parts[1]] = parts
    return events


def retry(conf, log_path):
    failed = 0
    with open(log_path, "a") as log:
        for path, event in list(last_events(log_path).items()):
            if event[0] != "fail":
                continue
            with open(path, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
            try:
                log_line(log, "ok %s %s %s" % (upload(conf, path), sha, path))
            except Exception as error:
                failed += 1
                log_line(log, "fail %s %s" % (path, error))
                print("retry failed: %s %s" % (path, error), file=sys.stderr)
    print(failed)


def check(conf, log_path):
    lost = 0
    for event in last_events(log_path).values():
        if event[0] != "ok":
            continue
        try:
            ok = client_sha(conf, event[1]) == event[2]
        except Exception as error:
            ok = False
            print("lost: %s %s" % (event[1], error), file=sys.stderr)
        lost += not ok
    print(lost)


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "read-mount":
        mnt = args[0]
        read_loop(lambda file_id: mount_sha(os.path.join(mnt, file_id)), read_set(args[1]), args[2], args[3])
    elif command == "read-client":
        read_loop(lambda file_id: client_sha(args[0], file_id), read_set(args[1]), args[2], args[3])
    elif command == "upload":
        upload_loop(*args)
    elif command == "retry":
        retry(*args)
    elif command == "check":
        check(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
