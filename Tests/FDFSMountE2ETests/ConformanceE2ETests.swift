import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Helpers every conformance script starts with: `expect_errno(code, what, fn, *args)`,
/// `expect(condition, what)`, `changes(paths, fields, what, fn)` (each field of each path
/// must grow), and `finish()`, which prints `ok` or one line per broken rule.
private let prelude = """
    import atexit, errno, os, socket, stat, sys, time
    fails = []
    def expect(condition, what):
        if not condition:
            fails.append(what)
    def expect_errno(code, what, fn, *args):
        try:
            fn(*args)
        except OSError as e:
            if e.errno != code:
                fails.append('%s: %s, want %s' % (what, errno.errorcode.get(e.errno, e.errno), errno.errorcode[code]))
            return
        fails.append('%s: succeeded, want %s' % (what, errno.errorcode[code]))
    def times(path):
        st = os.lstat(path)
        return {'a': st.st_atime_ns, 'm': st.st_mtime_ns, 'c': st.st_ctime_ns}
    def past(before):
        # Waits (at most 1 s) until the clock is past every time taken, so a change is later.
        latest, deadline = max(max(t.values()) for t in before), time.time() + 1
        while time.time_ns() <= latest and time.time() < deadline:
            pass
    def changes(paths, fields, what, fn, *args):
        before = [times(p) for p in paths]
        past(before)
        fn(*args)
        for p, old in zip(paths, before):
            new = times(p)
            for f in fields:
                if not new[f] > old[f]:
                    fails.append('%s: %stime of %s %d -> %d' % (what, f, os.path.basename(p) or p, old[f], new[f]))
    def unchanged(paths, fields, what, fn, *args):
        before = [times(p) for p in paths]
        past(before)
        fn(*args)
        for p, old in zip(paths, before):
            new = times(p)
            for f in fields:
                if new[f] != old[f]:
                    fails.append('%s: %stime of %s changed' % (what, f, os.path.basename(p) or p))
    def touch(path, mode=0o644):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, mode))
    def content(path, data=None):
        if data is not None:
            with open(path, 'wb') as f:
                f.write(data)
        with open(path, 'rb') as f:
            return f.read()
    finished = []
    def finish():
        finished.append(True)
        print('\\n'.join(fails) if fails else 'ok')
    # A script stopped by an exception still reports what it saw broken before.
    atexit.register(lambda: finished or print('\\n'.join(fails + ['(stopped early)'])))

    """

extension MountE2E {
/// The rules pjdfstest checks, for every operation the mount supports, on a real mount:
/// errnos for bad arguments, times, permissions for another user (the kernel decides from
/// what the mount reports: `default_permissions`), sticky directories, open flags, link
/// counts, hard links and special files. Each script prints `ok` or the rules it saw broken.
@Suite(.serialized) struct ConformanceE2ETests {
    /// Runs a conformance script (as user nobody with `asNobody`) and expects `ok`.
    func conform(_ source: String, in mount: TestMount, _ arguments: [String], asNobody: Bool = false,
                 sourceLocation: SourceLocation = #_sourceLocation) {
        let script = pythonScript(prelude + source, in: mount.root)
        chmod(mount.root, 0o755)
        chmod(script, 0o644)
        let user = asNobody ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : ""
        // /usr/bin/python3: user nobody may not run a python under /root.
        let result = Shell.run(user + "/usr/bin/python3 '\(script)' " + arguments.map { "'\($0)'" }.joined(separator: " "), timeout: 60)
        #expect(result.status == 0 && result.stdout == "ok\n", "\(result.stdout)\(result.stderr)", sourceLocation: sourceLocation)
    }

    @Test func badArgumentsGetTheirErrnos() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount()
        defer { mount.stop() }
        let work = mount.workdir()
        conform("""
            d = sys.argv[1]
            os.chdir(d)
            long = 'x' * 256
            ok255 = 'y' * 255
            touch(ok255)
            expect(os.path.exists(ok255), 'a 255-byte name')
            touch('f')
            os.mkdir('dir')
            for what, fn, args in [('open', os.open, (long, os.O_CREAT | os.O_WRONLY)), ('mkdir', os.mkdir, (long,)),
                                   ('symlink', os.symlink, ('f', long)), ('link', os.link, ('f', long)),
                                   ('mkfifo', os.mkfifo, (long,)), ('rename', os.rename, ('f', long)),
                                   ('unlink', os.unlink, (long,)), ('rmdir', os.rmdir, (long,)), ('stat', os.stat, (long,)),
                                   ('chmod', os.chmod, (long, 0o644))]:
                expect_errno(errno.ENAMETOOLONG, what + ' of a 256-byte name', fn, *args)
            deep = '/'.join(['z' * 250] * 17)
            expect_errno(errno.ENAMETOOLONG, 'a path over PATH_MAX', os.stat, deep)
            expect_errno(errno.ENAMETOOLONG, 'mkdir of a path over PATH_MAX', os.mkdir, deep)
            # ENOTDIR
            expect_errno(errno.ENOTDIR, 'create below a file', os.open, 'f/x', os.O_CREAT | os.O_WRONLY)
            expect_errno(errno.ENOTDIR, 'mkdir below a file', os.mkdir, 'f/x')
            expect_errno(errno.ENOTDIR, 'rmdir of a file', os.rmdir, 'f')
            expect_errno(errno.ENOTDIR, 'link below a file', os.link, 'f', 'f/x')
            expect_errno(errno.ENOTDIR, 'rename a directory onto a file', os.rename, 'dir', 'f')
            expect_errno(errno.ENOTDIR, 'opendir of a file', os.listdir, 'f')
            # ELOOP
            os.symlink('loop2', 'loop1')
            os.symlink('loop1', 'loop2')
            expect_errno(errno.ELOOP, 'open through a symlink loop', os.open, 'loop1', os.O_RDONLY)
            expect_errno(errno.ELOOP, 'create through a symlink loop', os.open, 'loop1/x', os.O_CREAT | os.O_WRONLY)
            os.symlink('f', 'lf')
            expect_errno(errno.ELOOP, 'O_NOFOLLOW on a symlink', os.open, 'lf', os.O_RDONLY | os.O_NOFOLLOW)
            # EEXIST
            expect_errno(errno.EEXIST, 'mkdir of an existing name', os.mkdir, 'f')
            expect_errno(errno.EEXIST, 'O_CREAT|O_EXCL of an existing file', os.open, 'f', os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            expect_errno(errno.EEXIST, 'O_CREAT|O_EXCL of a symlink', os.open, 'lf', os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            expect_errno(errno.EEXIST, 'link onto an existing name', os.link, 'f', 'dir')
            expect_errno(errno.EEXIST, 'symlink onto an existing name', os.symlink, 'x', 'f')
            expect_errno(errno.EEXIST, 'mkfifo onto an existing name', os.mkfifo, 'dir')
            expect_errno(errno.EEXIST, 'mknod onto an existing name', os.mknod, 'f', stat.S_IFCHR | 0o600, os.makedev(1, 3))
            # ENOTEMPTY, EISDIR, EINVAL, ENOENT
            os.mkdir('full')
            touch('full/x')
            expect_errno(errno.ENOTEMPTY, 'rmdir of a non-empty directory', os.rmdir, 'full')
            expect_errno(errno.ENOTEMPTY, 'rename onto a non-empty directory', os.rename, 'dir', 'full')
            expect_errno(errno.EISDIR, 'open a directory for writing', os.open, 'dir', os.O_WRONLY)
            expect_errno(errno.EISDIR, 'rename a file onto a directory', os.rename, 'f', 'dir')
            expect_errno(errno.EISDIR, 'unlink of a directory', os.unlink, 'dir')
            expect_errno(errno.EINVAL, 'rename a directory into itself', os.rename, 'full', 'full/sub')
            expect_errno(errno.EINVAL, 'rmdir of .', os.rmdir, 'full/.')
            expect_errno(errno.EINVAL, 'truncate to a negative size', os.truncate, 'f', -1)
            expect_errno(errno.EFBIG, 'truncate beyond the spool', os.truncate, 'f', 999999999999999)
            expect_errno(errno.ENOENT, 'open of a missing name', os.open, 'missing', os.O_RDONLY)
            expect_errno(errno.ENOENT, 'link of a missing name', os.link, 'missing', 'g')
            expect_errno(errno.ENOENT, 'create below a missing directory', os.open, 'missing/x', os.O_CREAT | os.O_WRONLY)
            # O_EXCL, O_TRUNC, O_APPEND
            fd = os.open('new', os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
            os.write(fd, b'abc')
            os.close(fd)
            expect(stat.S_IMODE(os.stat('new').st_mode) == 0o640, 'O_CREAT|O_EXCL mode')
            fd = os.open('new', os.O_WRONLY | os.O_APPEND)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, b'de')
            os.close(fd)
            expect(content('new') == b'abcde', 'O_APPEND writes at the end: %r' % content('new'))
            os.close(os.open('new', os.O_WRONLY | os.O_TRUNC))
            expect(os.stat('new').st_size == 0 and content('new') == b'', 'O_TRUNC empties')
            finish()
            """, in: mount, [work])
        // Bad names are the caller's mistake, not the mount's: nothing at error level.
        #expect(!mount.log.contains(" error "), "\(mount.log)")
    }

    @Test func everyChangeSetsTheTimesPosixNames() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount(options: "attr_timeout=0")
        defer { mount.stop() }
        let work = mount.workdir()
        conform("""
            d = sys.argv[1]
            os.chdir(d)
            os.mkdir('a')
            os.mkdir('b')
            changes(['a'], 'mc', 'create', touch, 'a/f')
            changes(['a'], 'mc', 'mkdir', os.mkdir, 'a/sub')
            changes(['a'], 'mc', 'rmdir', os.rmdir, 'a/sub')
            changes(['a'], 'mc', 'symlink', os.symlink, 'f', 'a/l')
            changes(['a'], 'mc', 'unlink of a symlink', os.unlink, 'a/l')
            changes(['a'], 'mc', 'mkfifo', os.mkfifo, 'a/fifo')
            changes(['a/fifo'], 'c', 'chmod of a fifo', os.chmod, 'a/fifo', 0o600)
            changes(['a'], 'mc', 'mknod', os.mknod, 'a/dev', stat.S_IFBLK | 0o600, os.makedev(7, 0))
            changes(['a'], 'mc', 'unlink of a fifo', os.unlink, 'a/fifo')
            changes(['a/f', 'b'], 'c', 'link (file ctime, directory)', os.link, 'a/f', 'b/g')
            changes(['b'], 'm', 'link (directory mtime)', os.link, 'a/f', 'b/h')
            changes(['a/f', 'b'], 'c', 'unlink of one of several names', os.unlink, 'b/h')
            changes(['b'], 'm', 'unlink of a link (directory mtime)', os.unlink, 'b/g')
            moved = times('a/f')
            changes(['a', 'b'], 'mc', 'rename (directories)', os.rename, 'a/f', 'b/f')
            expect(times('b/f')['c'] > moved['c'], 'rename: ctime of the file')
            changes(['a', 'b'], 'mc', 'rename back (directories)', os.rename, 'b/f', 'a/f')
            unchanged(['a/f'], 'm', 'chmod', os.chmod, 'a/f', 0o600)
            changes(['a/f'], 'c', 'chmod', os.chmod, 'a/f', 0o640)
            changes(['a/f'], 'c', 'chown', os.chown, 'a/f', 1, 1)
            changes(['a/f'], 'c', 'utimes', os.utime, 'a/f', None)
            def write():
                fd = os.open('a/f', os.O_WRONLY)
                os.write(fd, b'data')
                os.close(fd)
            changes(['a/f'], 'mc', 'write', write)
            changes(['a/f'], 'mc', 'O_TRUNC', lambda: os.close(os.open('a/f', os.O_WRONLY | os.O_TRUNC)))
            changes(['a/f'], 'mc', 'truncate', os.truncate, 'a/f', 100)
            def ftruncate():
                fd = os.open('a/f', os.O_RDWR)
                os.ftruncate(fd, 7)
                os.close(fd)
            changes(['a/f'], 'mc', 'ftruncate', ftruncate)
            os.utime('a/f', ns=(1000000000123, 2000000000456))
            st = os.stat('a/f')
            expect((st.st_atime_ns, st.st_mtime_ns) == (1000000000123, 2000000000456), 'utimes in nanoseconds')
            finish()
            """, in: mount, [work])
    }

    @Test func anotherUserGetsEACCESAndEPERMAsOnExt4() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount(options: "allow_other")
        defer { mount.stop() }
        let work = mount.workdir()
        Shell.ok("""
            cd '\(work)' && chmod 755 . && mkdir closed shut && printf abc > f && chmod 644 f && chmod 700 shut && touch shut/inner \
            && mkdir sticky && chmod 1777 sticky && touch sticky/roots && chmod 666 sticky/roots \
            && mkdir sticky/rootdir && chmod 777 sticky/rootdir && mkdir open && chmod 777 open \
            && touch open/roots && chmod 666 open/roots
            """)
        conform("""
            d = sys.argv[1]
            os.chdir(d)
            expect(os.getuid() == 65534, 'runs as nobody')
            expect_errno(errno.EACCES, 'open a 0644 file of root for writing', os.open, 'f', os.O_WRONLY)
            expect_errno(errno.EACCES, 'truncate a 0644 file of root', os.truncate, 'f', 0)
            expect_errno(errno.EACCES, 'create in a 0755 directory of root', os.open, 'closed/x', os.O_CREAT | os.O_WRONLY)
            expect_errno(errno.EACCES, 'mkdir in a 0755 directory of root', os.mkdir, 'closed/x')
            expect_errno(errno.EACCES, 'mkfifo in a 0755 directory of root', os.mkfifo, 'closed/x')
            expect_errno(errno.EACCES, 'symlink in a 0755 directory of root', os.symlink, 'f', 'closed/x')
            expect_errno(errno.EACCES, 'unlink in a 0755 directory of root', os.unlink, 'f')
            expect_errno(errno.EACCES, 'rename out of a 0755 directory of root', os.rename, 'f', 'open/f')
            expect_errno(errno.EACCES, 'link into a 0755 directory of root', os.link, 'open/roots', 'closed/x')
            expect_errno(errno.EACCES, 'lookup in a 0700 directory of root', os.stat, 'shut/inner')
            expect_errno(errno.EACCES, 'list a 0700 directory of root', os.listdir, 'shut')
            expect_errno(errno.EPERM, 'chmod of a file of root', os.chmod, 'f', 0o777)
            expect_errno(errno.EPERM, 'chown of a file of root', os.chown, 'f', 65534, 65534)
            expect_errno(errno.EPERM, 'utimes with times on a file of root', os.utime, 'f', (1, 1))
            expect_errno(errno.EACCES, 'utimes now on a 0644 file of root', os.utime, 'f', None)
            expect_errno(errno.EPERM, 'mknod of a character device', os.mknod, 'open/dev', stat.S_IFCHR | 0o600, os.makedev(1, 3))
            # What nobody may do.
            touch('open/mine', 0o600)
            st = os.stat('open/mine')
            expect((st.st_uid, st.st_gid) == (65534, 65534), 'a new file belongs to its creator')
            os.chmod('open/mine', 0o640)
            os.utime('open/mine', (5, 5))
            os.mkfifo('open/myfifo')
            expect(os.stat('open/myfifo').st_uid == 65534, 'a new fifo belongs to its creator')
            os.utime('open/roots', None)
            os.unlink('open/roots')
            expect_errno(errno.EPERM, 'chown to another user', os.chown, 'open/mine', 0, -1)
            # Sticky directory: only the owner of the entry (or of the directory) removes it.
            expect_errno(errno.EPERM, 'unlink of root\\'s file in a sticky directory', os.unlink, 'sticky/roots')
            expect_errno(errno.EPERM, 'rename of root\\'s file in a sticky directory', os.rename, 'sticky/roots', 'sticky/moved')
            expect_errno(errno.EPERM, 'rmdir of root\\'s directory in a sticky directory', os.rmdir, 'sticky/rootdir')
            touch('sticky/roots2')
            expect_errno(errno.EPERM, 'rename onto root\\'s file in a sticky directory', os.rename, 'sticky/roots2', 'sticky/roots')
            os.rename('sticky/roots2', 'sticky/mine')
            os.unlink('sticky/mine')
            content('sticky/roots', b'written by nobody')
            finish()
            """, in: mount, [work], asNobody: true)
        Shell.ok("rm -rf '\(work)'")
    }

    @Test func hardLinksAndSpecialFilesBehaveAsOnExt4() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount(options: "allow_other")
        defer { mount.stop() }
        let work = mount.workdir()
        let groups = Shell.ok("ls '\(mount.mountpoint)'").split(separator: "\n").map(String.init)
        try #require(groups.count >= 2, "this test needs a cluster with two groups (Scripts/cluster makes two): \(groups)")
        let otherGroup = mount.path(groups[1])
        conform("""
            import subprocess
            d, other = sys.argv[1], sys.argv[2]
            os.chdir(d)
            def xattr(path):
                return subprocess.run(['getfattr', '--only-values', '-n', 'user.fdfs.file_id', path], capture_output=True).stdout
            # Directories: 2 + subdirectories.
            os.mkdir('top')
            expect(os.stat('top').st_nlink == 2, 'an empty directory has 2 links')
            os.mkdir('top/s1')
            os.mkdir('top/s2')
            touch('top/file')
            expect(os.stat('top').st_nlink == 4, 'a directory with 2 subdirectories has 4 links, not %d' % os.stat('top').st_nlink)
            os.rename('top/s2', 's2')
            expect(os.stat('top').st_nlink == 3, 'moving a subdirectory out')
            os.rmdir('top/s1')
            expect(os.stat('top').st_nlink == 2, 'rmdir of a subdirectory')
            # Hard links: one inode, two names.
            content('a', b'first')
            os.link('a', 'top/b')
            sa, sb = os.stat('a'), os.stat('top/b')
            expect(sa.st_ino == sb.st_ino and sa.st_nlink == 2 and sb.st_nlink == 2, 'two names, one inode, nlink 2')
            os.chmod('top/b', 0o600)
            expect(stat.S_IMODE(os.stat('a').st_mode) == 0o600, 'chmod through one name is seen through the other')
            content('top/b', b'second version')
            expect(content('a') == b'second version', 'a write through one name is read through the other')
            expect(xattr('a') == xattr('top/b') and xattr('a') != b'', 'both names have the new file ID')
            fd = os.open('a', os.O_WRONLY | os.O_APPEND)
            os.write(fd, b'!')
            os.close(fd)
            expect(content('top/b') == b'second version!', 'an append through one name')
            os.rename('top/b', 'c')
            expect(os.stat('a').st_nlink == 2 and content('c') == b'second version!', 'rename of one name')
            os.link('c', 'd')
            expect(os.stat('a').st_nlink == 3, 'three names')
            os.unlink('a')
            expect(os.stat('c').st_nlink == 2 and content('d') == b'second version!', 'unlink of the first name')
            touch('e')
            os.rename('e', 'c')
            expect(os.stat('d').st_nlink == 1 and content('d') == b'second version!', 'a rename replacing one name')
            fd = os.open('d', os.O_RDONLY)
            os.link('d', 'f')
            os.unlink('d')
            expect(os.fstat(fd).st_nlink == 1 and os.read(fd, 100) == b'second version!', 'an open descriptor, unlink of one name')
            os.close(fd)
            expect_errno(errno.EPERM, 'link to a directory', os.link, 'top', 'top2')
            expect_errno(errno.EXDEV, 'link into another group', os.link, 'f', other + '/linked-from-elsewhere')
            os.symlink('f', 'sl')
            os.link('sl', 'sl2', follow_symlinks=False)
            expect(os.readlink('sl2') == 'f' and os.lstat('sl').st_nlink == 2, 'a hard link to a symlink')
            # A FIFO: the kernel carries the bytes.
            os.mkfifo('fifo', 0o640)
            st = os.stat('fifo')
            expect(stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640, 'mkfifo: type and mode')
            expect_errno(errno.ENXIO, 'O_WRONLY|O_NONBLOCK of a fifo without a reader', os.open, 'fifo', os.O_WRONLY | os.O_NONBLOCK)
            fd = os.open('fifo', os.O_RDWR)
            os.write(fd, b'through the pipe')
            expect(os.read(fd, 100) == b'through the pipe', 'bytes through a fifo')
            os.close(fd)
            os.link('fifo', 'fifo2')
            expect(os.stat('fifo2').st_nlink == 2, 'a hard link to a fifo')
            # A unix socket: bind creates it, connect finds it.
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind('sock')
            server.listen(1)
            expect(stat.S_ISSOCK(os.stat('sock').st_mode), 'bind makes a socket')
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect('sock')
            peer, _ = server.accept()
            client.sendall(b'hello')
            expect(peer.recv(10) == b'hello', 'bytes through a unix socket')
            for s in (client, peer, server):
                s.close()
            # Device nodes keep their numbers.
            os.mknod('chr', stat.S_IFCHR | 0o600, os.makedev(1, 3))
            os.mknod('blk', stat.S_IFBLK | 0o600, os.makedev(7, 1))
            expect(stat.S_ISCHR(os.stat('chr').st_mode) and os.stat('chr').st_rdev == os.makedev(1, 3), 'a character device')
            expect(stat.S_ISBLK(os.stat('blk').st_mode) and os.stat('blk').st_rdev == os.makedev(7, 1), 'a block device')
            os.mknod('reg', stat.S_IFREG | 0o600)
            expect(stat.S_ISREG(os.stat('reg').st_mode) and os.stat('reg').st_size == 0 and content('reg') == b'', 'mknod of a regular file')
            listed = {e.name: (e.is_dir(), e.is_file(), e.is_symlink()) for e in os.scandir('.')}
            expect(set(['fifo', 'sock', 'chr', 'blk', 'reg', 'f', 'sl2']) <= set(listed), 'listed: %s' % sorted(listed))
            for name in ['fifo', 'fifo2', 'sock', 'chr', 'blk', 'reg', 'f', 'c', 'sl', 'sl2']:
                os.unlink(name)
            finish()
            """, in: mount, [work, otherGroup])
        #expect(Shell.ok("ls -A '\(work)'") == "s2\ntop\n")
        #expect(!mount.log.contains(" error "), "\(mount.log)")
    }
}
}
