import FDFSMount
import FDFSProtocol
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Appendable mode while an appender file's source storage is down and the member the tracker
/// names instead has not synced the file's last change (found by fdfs-fsx with a storage killed
/// during a run): no stale byte is served, and no change lands on the stale copy.
@Suite struct AppenderSourceTests {
    /// An appendable mount with `group1/log` committed as an appender file of `first`, then
    /// changed in place to `second` (the source has it; the member still holds `first`).
    func laggingMember() async throws -> (TempDir, MemoryCluster, FDFSFileSystem, UInt64, FileID) {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster) { $0.appendable = true }
        let group = try await resolve(fs, "group1").attributes.ino
        let first = Array("first version of the log".utf8)
        let ino = try await writeFile(fs, parent: group, "log", first)
        let id = try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
        #expect(id.kind == .appender)
        let open = try await fs.open(ino, flags: O_WRONLY)
        _ = try Array("FIRST".utf8).withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
        _ = try Array(" and more".utf8).withUnsafeBytes { try fs.write(open.handle, offset: Int64(first.count), bytes: $0) }
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        #expect(cluster.bytes(id) == Array("FIRST version of the log and more".utf8))
        cluster.state.withLock { s in
            s.memberCopies[id.description] = first
            s.sourceDown = true
        }
        return (dir, cluster, fs, ino, id)
    }

    @Test func aReadWhileTheSourceIsDownFailsRatherThanServeALaggingCopy() async throws {
        let (dir, cluster, fs, ino, id) = try await laggingMember()
        _ = dir
        #expect(await errno { _ = try await readAll(fs, ino) } == EIO)
        #expect(await errno { _ = try await fs.open(ino, flags: O_RDWR) } == EIO)
        // The source is back: the committed content.
        cluster.state.withLock { $0.sourceDown = false }
        #expect(try await readAll(fs, ino) == Array("FIRST version of the log and more".utf8))
        #expect(cluster.bytes(id) == Array("FIRST version of the log and more".utf8))
    }

    @Test func aChangeWhileTheSourceIsDownIsUploadedWholeNotSentToTheLaggingCopy() async throws {
        let (dir, cluster, fs, ino, id) = try await laggingMember()
        _ = dir
        // The file is open for writing from before the outage (its spool holds the content).
        cluster.state.withLock { $0.sourceDown = false }
        let open = try await fs.open(ino, flags: O_WRONLY)
        cluster.state.withLock { $0.sourceDown = true }
        let calls = (cluster.count("modify"), cluster.count("append"), cluster.count("truncate"))
        _ = try Array("!".utf8).withUnsafeBytes { try fs.write(open.handle, offset: 33, bytes: $0) }
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        #expect((cluster.count("modify"), cluster.count("append"), cluster.count("truncate")) == calls, "a change went to the lagging member")
        let expected = Array("FIRST version of the log and more!".utf8)
        let now = try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
        #expect(now != id && now.kind == .appender)
        #expect(cluster.bytes(now) == expected)
        cluster.state.withLock { $0.sourceDown = false }
        #expect(try await readAll(fs, ino) == expected)
    }
}
