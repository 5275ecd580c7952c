import FDFSClient
import FDFSProtocol
import Foundation
import Testing
import class FDFSTestSupport.ChildProcess

#if canImport(Glibc)
import Glibc
#endif

/// Writes a Python script into `dir` and returns its path (scripts as files keep the quoting
/// of the shell out of them).
func pythonScript(_ source: String, in dir: String) -> String {
    let path = dir + "/script-" + UUID().uuidString.prefix(8) + ".py"
    FileManager.default.createFile(atPath: path, contents: Data(source.utf8))
    return path
}

/// Runs a Python script with arguments; its output.
@discardableResult
func python(_ source: String, in dir: String, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let script = pythonScript(source, in: dir)
    return Shell.ok("python3 '\(script)' " + arguments.map { "'\($0)'" }.joined(separator: " "), sourceLocation: sourceLocation)
}

extension MountE2E {
/// POSIX behaviour that tools rely on, checked through a real kernel mount.
@Suite(.serialized) struct PosixE2ETests {
    @Test func anUnlinkedOpenFileStaysReadableUntilItsLastClose() async throws {
        let client = try TestCluster.client()
        let mount = try TestMount()
        defer { mount.stop() }
        let work = mount.workdir()
        let local = localFile(300_000, in: mount.root)
        Shell.ok("cp '\(local.path)' '\(work)/held'")
        let id = try mountedFileID(work + "/held")
        let report = mount.root + "/report", closeNow = mount.root + "/close-now"
        let script = pythonScript("""
            import hashlib, os, sys, time
            path, report, close_now = sys.argv[1:4]
            fd = os.open(path, os.O_RDONLY)
            os.unlink(path)
            st = os.fstat(fd)
            data = b''
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
            with open(report + '.tmp', 'w') as f:
                f.write('%s %d %d %s\\n' % (os.path.exists(path), st.st_nlink, st.st_size, hashlib.sha256(data).hexdigest()))
            os.rename(report + '.tmp', report)
            deadline = time.time() + 60
            while not os.path.exists(close_now) and time.time() < deadline:
                time.sleep(0.02)
            os.close(fd)
            """, in: mount.root)
        let holder = try ChildProcess("/usr/bin/python3", [script, work + "/held", report, closeNow], stdout: .file(mount.root + "/py.out"), stderr: .file(mount.root + "/py.err"))
        defer {
            holder.signal(SIGKILL)
            holder.wait()
        }
        let reported = waitUntil(20) { FileManager.default.fileExists(atPath: report) || !holder.isRunning }
        let errors = (try? String(contentsOfFile: mount.root + "/py.err", encoding: .utf8)) ?? ""
        #expect(reported && FileManager.default.fileExists(atPath: report), "\(errors)")
        // Gone from the directory; fstat: no links and the size; read: every byte.
        #expect((try? String(contentsOfFile: report, encoding: .utf8)) == "False 0 300000 \(sha256(local.path))\n", "\(errors)")
        // While the descriptor is open the cluster keeps the file…
        #expect(try await client.fileInfo(id).size == 300_000)
        // …and it is deleted after the last close.
        FileManager.default.createFile(atPath: closeNow, contents: nil)
        #expect(waitUntil(20) { !holder.isRunning })
        #expect(holder.wait() == 0)
        await expectGoneFromCluster([id], client)
        #expect(Shell.ok("ls -A '\(work)'") == "")
        await client.shutdown()
    }

    @Test func aWriterUnlinkedWhileOpenWritesOnAndCommitsNothing() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount()
        defer { mount.stop() }
        let work = mount.workdir()
        let uploads = mount.metric("fdfs_mount_uploads_total")
        let output = python("""
            import os, sys
            path = sys.argv[1]
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
            os.write(fd, b'abc')
            os.unlink(path)
            os.write(fd, b'de')
            st = os.fstat(fd)
            data = os.pread(fd, 10, 0)
            os.close(fd)
            print(os.path.exists(path), st.st_nlink, st.st_size, data.decode())
            """, in: mount.root, [work + "/scratch"])
        #expect(output == "False 0 5 abcde\n")
        #expect(mount.metric("fdfs_mount_uploads_total") == uploads)
        #expect(Shell.ok("ls -A '\(work)'") == "")
    }

    /// Runs `line` as user nobody (no CAP_FSETID).
    func asNobody(_ line: String) {
        Shell.ok("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \"\(line)\"")
    }

    @Test func writesTruncationsAndChownClearSetIDBits() async throws {
        _ = try TestCluster.clientConf()
        // allow_other: user nobody writes; attr_timeout=0: every stat asks the mount.
        let mount = try TestMount(options: "allow_other,attr_timeout=0")
        defer { mount.stop() }
        let work = mount.workdir()
        let file = work + "/tool"
        Shell.ok("printf abc > '\(file)'")
        func mode() -> String { Shell.ok("stat -c %a '\(file)'").trimmingCharacters(in: .whitespacesAndNewlines) }
        Shell.ok("chmod 6777 '\(file)'")
        Shell.ok("printf d >> '\(file)'")
        #expect(mode() == "6777", "root keeps them")
        asNobody("printf e >> '\(file)'")
        #expect(mode() == "777", "a write by nobody")
        Shell.ok("chmod 2766 '\(file)'")
        asNobody("printf f >> '\(file)'")
        #expect(mode() == "2766", "set-group-ID without group-execute stays")
        Shell.ok("chmod 4777 '\(file)'")
        asNobody("truncate -s 2 '\(file)'")
        #expect(mode() == "777", "truncate by nobody")
        Shell.ok("chmod 4777 '\(file)'")
        asNobody(": > '\(file)'")
        #expect(mode() == "777", "O_TRUNC by nobody")
        Shell.ok("chmod 6745 '\(file)' && chown 1:1 '\(file)'")
        #expect(mode() == "2745", "chown")
        #expect(Shell.ok("cat '\(file)'") == "")
        Shell.ok("rm -rf '\(work)'")
    }

    @Test func namespaceChangesWritesAndTruncationsUpdateTimes() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount(options: "attr_timeout=0")
        defer { mount.stop() }
        let work = mount.workdir()
        let output = python("""
            import os, sys, time
            d = sys.argv[1]
            def times(path):
                st = os.stat(path)
                return (st.st_mtime_ns, st.st_ctime_ns)
            def check(what, paths, change):
                before = [times(p) for p in paths]
                latest, deadline = max(max(t) for t in before), time.time() + 1
                while time.time_ns() <= latest and time.time() < deadline:
                    pass
                change()
                after = [times(p) for p in paths]
                for p, old, new in zip(paths, before, after):
                    if not (new[0] > old[0] and new[1] > old[1]):
                        print('%s: %s mtime %d -> %d, ctime %d -> %d' % (what, p, old[0], new[0], old[1], new[1]))
            a, b = d + '/a', d + '/b'
            os.mkdir(a)
            os.mkdir(b)
            check('create', [a], lambda: os.close(os.open(a + '/f', os.O_CREAT | os.O_WRONLY, 0o644)))
            check('mkdir', [a], lambda: os.mkdir(a + '/sub'))
            check('symlink', [a], lambda: os.symlink('f', a + '/l'))
            check('unlink', [a], lambda: os.unlink(a + '/l'))
            check('rmdir', [a], lambda: os.rmdir(a + '/sub'))
            check('rename', [a, b], lambda: os.rename(a + '/f', b + '/f'))
            fd = os.open(b + '/f', os.O_WRONLY)
            check('write', [b + '/f'], lambda: os.write(fd, b'data'))
            os.close(fd)
            check('O_TRUNC', [b + '/f'], lambda: os.close(os.open(b + '/f', os.O_WRONLY | os.O_TRUNC)))
            check('truncate', [b + '/f'], lambda: os.truncate(b + '/f', 100))
            print('done')
            """, in: mount.root, [work])
        #expect(output == "done\n")
        Shell.ok("rm -rf '\(work)'")
    }

    @Test func aWriteRefusedForSpaceFailsCloseAndKeepsTheOldContent() async throws {
        _ = try TestCluster.clientConf()
        let mount = try TestMount(options: "spool_size=4M")
        defer { mount.stop() }
        let work = mount.workdir()
        let old = localFile(1_000_000, in: mount.root)
        Shell.ok("cp '\(old.path)' '\(work)/kept'")
        let id = try mountedFileID(work + "/kept")
        let uploads = mount.metric("fdfs_mount_uploads_total")
        let writer = """
            import errno, os, sys
            path, flags = sys.argv[1], os.O_WRONLY | os.O_TRUNC | os.O_CREAT
            fd = os.open(path, flags, 0o644)
            chunk, failed = os.urandom(1 << 20), None
            for i in range(8):
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    failed = errno.errorcode[e.errno]
                    break
            try:
                os.close(fd)
                closed = 'ok'
            except OSError as e:
                closed = errno.errorcode[e.errno]
            print(failed, closed)
            """
        // An existing file: write and close fail, the name keeps the old content.
        #expect(python(writer, in: mount.root, [work + "/kept"]) == "ENOSPC ENOSPC\n")
        #expect(sha256(work + "/kept") == sha256(old.path))
        #expect(try mountedFileID(work + "/kept") == id)
        // A new file: nothing is committed, the name goes (at the release that follows close(),
        // and from the kernel's cache within attr_timeout).
        #expect(python(writer, in: mount.root, [work + "/new"]) == "ENOSPC ENOSPC\n")
        #expect(waitUntil(5) { !FileManager.default.fileExists(atPath: work + "/new") })
        #expect(mount.metric("fdfs_mount_uploads_total") == uploads)
        Shell.ok("rm -rf '\(work)'")
    }
}
}
