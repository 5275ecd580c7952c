import FDFSClient
import FDFSMount
import FDFSProtocol
import Testing
import Foundation
import enum FDFSTestSupport.Processes

#if canImport(Glibc)
import Glibc
#endif

/// A user without CAP_FSETID (not root).
let unprivileged = Caller(uid: 1000, gid: 1000, pid: 1)

func permissions(_ fs: FDFSFileSystem, _ ino: UInt64) async throws -> UInt32 {
    try fs.getattr(ino).attributes.mode & 0o7777
}

func chmod(_ fs: FDFSFileSystem, _ ino: UInt64, _ mode: UInt32) async throws {
    _ = try await fs.setattr(ino, changes: AttributeChanges(mode: mode)).value
}

/// As ext4: a write or truncation by a user without CAP_FSETID clears set-user-ID, and
/// set-group-ID when group-execute is set; so does a change of owner, whoever makes it.
@Suite struct SetIDBitTests {
    func write(_ fs: FDFSFileSystem, _ handle: UInt64, as caller: Caller) throws {
        _ = try [7, 7].withUnsafeBytes { try fs.write(handle, offset: 0, bytes: $0, caller: caller) }
    }

    @Test func aWriteByAnotherUserClearsThem() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "tool", [1, 2, 3])
        try await chmod(fs, ino, 0o6777)
        let open = try await fs.open(ino, flags: O_WRONLY)
        // Root (CAP_FSETID) keeps them.
        try write(fs, open.handle, as: .root)
        #expect(try await permissions(fs, ino) == 0o6777)
        try write(fs, open.handle, as: unprivileged)
        #expect(try await permissions(fs, ino) == 0o777)
        // Set-group-ID without group-execute (a locking mark, not a privilege) stays.
        try await chmod(fs, ino, 0o2767)
        try write(fs, open.handle, as: unprivileged)
        #expect(try await permissions(fs, ino) == 0o2767)
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        #expect(try await permissions(fs, ino) == 0o2767)
        // A file created with the bits loses them at its creator's first write, too.
        let (created, handle) = try await fs.create(parent: group, name: "new", mode: 0o4755, flags: O_WRONLY, caller: unprivileged).value
        try write(fs, handle.handle, as: unprivileged)
        #expect(try await permissions(fs, created.attributes.ino) == 0o755)
        try await fs.flush(created.attributes.ino, handle: handle.handle).value
        try await fs.release(created.attributes.ino, handle: handle.handle).value
        #expect(try await permissions(fs, created.attributes.ino) == 0o755)
    }

    @Test func truncationByAnotherUserClearsThem() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "tool", [1, 2, 3])
        try await chmod(fs, ino, 0o6777)
        _ = try await fs.setattr(ino, changes: AttributeChanges(size: 2), caller: .root).value
        #expect(try await permissions(fs, ino) == 0o6777)
        _ = try await fs.setattr(ino, changes: AttributeChanges(size: 1), caller: unprivileged).value
        #expect(try await permissions(fs, ino) == 0o777)
        // open(O_TRUNC) truncates as well.
        try await chmod(fs, ino, 0o4755)
        let open = try await fs.open(ino, flags: O_WRONLY | O_TRUNC, caller: unprivileged)
        #expect(try await permissions(fs, ino) == 0o755)
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
    }

    @Test func aChangeOfOwnerClearsThem() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "tool", [1])
        try await chmod(fs, ino, 0o6745)
        _ = try await fs.setattr(ino, changes: AttributeChanges(uid: 5, gid: 5), caller: .root).value
        // Set-group-ID stays here: group-execute is not set.
        #expect(try await permissions(fs, ino) == 0o2745)
        // A mode given with the owner is taken as given (what `cp -a` and `rsync -a` restore).
        _ = try await fs.setattr(ino, changes: AttributeChanges(mode: 0o4755, uid: 6), caller: .root).value
        #expect(try await permissions(fs, ino) == 0o4755)
        // Directories keep them (set-group-ID on a directory is inheritance, not privilege).
        let d = try await fs.mkdir(parent: group, name: "d", mode: 0o2775, caller: .root).value.attributes.ino
        _ = try await fs.setattr(d, changes: AttributeChanges(uid: 5), caller: .root).value
        #expect(try await permissions(fs, d) == 0o2775)
    }
}

/// POSIX times: creating or removing a name updates its directory's mtime and ctime (both
/// directories for a rename); writing or truncating a file updates its mtime and ctime.
@Suite struct TimestampTests {
    func times(_ fs: FDFSFileSystem, _ ino: UInt64) async throws -> (mtime: Int64, ctime: Int64) {
        let attributes = try fs.getattr(ino).attributes
        return (attributes.mtime, attributes.ctime)
    }

    /// Runs `body` a little after taking `inodes`' times and expects it to have advanced both.
    func expectTouched(_ fs: FDFSFileSystem, _ inodes: [UInt64], _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () async throws -> Void) async throws {
        var before: [(mtime: Int64, ctime: Int64)] = []
        for ino in inodes { before.append(try await times(fs, ino)) }
        // The change must happen at a later clock reading than the times taken.
        let latest = before.map { max($0.mtime, $0.ctime) }.max() ?? 0
        #expect(Processes.wait(for: 1, poll: 0.001) { Int64(Date().timeIntervalSince1970 * 1e9) > latest })
        try await body()
        for (ino, old) in zip(inodes, before) {
            let new = try await times(fs, ino)
            #expect(new.mtime > old.mtime, "\(what): mtime of \(ino)", sourceLocation: sourceLocation)
            #expect(new.ctime > old.ctime, "\(what): ctime of \(ino)", sourceLocation: sourceLocation)
        }
    }

    @Test func namespaceChangesTouchTheirDirectories() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let a = try await fs.mkdir(parent: group, name: "a", mode: 0o755, caller: .root).value.attributes.ino
        let b = try await fs.mkdir(parent: group, name: "b", mode: 0o755, caller: .root).value.attributes.ino
        try await expectTouched(fs, [a], "create") {
            let (entry, open) = try await fs.create(parent: a, name: "f", mode: 0o644, flags: O_WRONLY, caller: .root).value
            try await fs.flush(entry.attributes.ino, handle: open.handle).value
            try await fs.release(entry.attributes.ino, handle: open.handle).value
        }
        try await expectTouched(fs, [a], "mkdir") { _ = try await fs.mkdir(parent: a, name: "sub", mode: 0o755, caller: .root).value }
        try await expectTouched(fs, [a], "symlink") { _ = try await fs.symlink(parent: a, name: "l", target: "f", caller: .root) }
        try await expectTouched(fs, [a], "unlink") { try await fs.unlink(parent: a, name: "l") }
        try await expectTouched(fs, [a], "rmdir") { try await fs.rmdir(parent: a, name: "sub") }
        try await expectTouched(fs, [a, b], "rename") { try await fs.rename(parent: a, name: "f", newParent: b, newName: "g", flags: 0) }
        try await expectTouched(fs, [b], "rename in place") { try await fs.rename(parent: b, name: "g", newParent: b, newName: "h", flags: 0) }
        // The group directory (synthetic) counts as well.
        try await expectTouched(fs, [group], "mkdir in a group") { _ = try await fs.mkdir(parent: group, name: "c", mode: 0o755, caller: .root).value }
    }

    @Test func writesAndTruncationsChangeTheFilesCtime() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "f", [1, 2, 3])
        let open = try await fs.open(ino, flags: O_WRONLY)
        try await expectTouched(fs, [ino], "write") {
            _ = try [9].withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
        }
        // After the upload the times stay where the write put them.
        let written = try await times(fs, ino)
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        let committed = try await times(fs, ino)
        #expect(committed.mtime == written.mtime && committed.ctime >= written.ctime)
        try await expectTouched(fs, [ino], "open(O_TRUNC)") {
            let open = try await fs.open(ino, flags: O_WRONLY | O_TRUNC)
            try await fs.flush(ino, handle: open.handle).value
            try await fs.release(ino, handle: open.handle).value
        }
        try await expectTouched(fs, [ino], "truncate") { _ = try await fs.setattr(ino, changes: AttributeChanges(size: 10)).value }
        // A time set into the future (touch -d) is the mtime; ctime is when it was set.
        let future: Int64 = 4_000_000_000 * 1_000_000_000
        _ = try await fs.setattr(ino, changes: AttributeChanges(mtime: .at(future))).value
        let set = try await times(fs, ino)
        #expect(set.mtime == future && set.ctime < future)
    }
}
