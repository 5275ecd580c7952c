import FDFSClient
import FDFSMount
import FDFSProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A write that fails (spool full) makes the file's unsaved content short: close() reports it
/// and nothing short is committed.
@Suite struct FailedWriteTests {
    func fileID(_ fs: FDFSFileSystem, _ ino: UInt64) async throws -> String {
        String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self)
    }

    /// Writes 600 KB twice at `handle`: the second write does not fit a 1 MB spool.
    func writePastTheSpool(_ fs: FDFSFileSystem, _ handle: UInt64) async throws {
        let chunk = randomBytes(600_000)
        _ = try chunk.withUnsafeBytes { try fs.write(handle, offset: 0, bytes: $0) }
        let refused = await errno { _ = try chunk.withUnsafeBytes { try fs.write(handle, offset: 600_000, bytes: $0) } }
        #expect(refused == ENOSPC)
    }

    @Test func aWriteRefusedForSpaceFailsCloseAndKeepsTheOldContent() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster) { $0.spoolSize = 1_000_000 }
        let group = try await resolve(fs, "group1").attributes.ino
        let old = randomBytes(300_000)
        let ino = try await writeFile(fs, parent: group, "f", old)
        let oldID = try await fileID(fs, ino)
        let open = try await fs.open(ino, flags: O_WRONLY | O_TRUNC)
        try await writePastTheSpool(fs, open.handle)
        // Every flush (close, fsync) of the file reports it; nothing is uploaded.
        #expect(await errno { try await fs.flush(ino, handle: open.handle).value } == ENOSPC)
        #expect(await errno { try await fs.flush(ino, handle: open.handle).value } == ENOSPC)
        try await fs.release(ino, handle: open.handle).value
        #expect(cluster.count("upload") == 1)
        // The name still points at the old file, with the old content.
        #expect(try await fileID(fs, ino) == oldID)
        #expect(try fs.getattr(ino).attributes.size == 300_000)
        #expect(try await readAll(fs, ino) == old)
        #expect(fs.spool.usedBytes == 0 && fs.spool.files().isEmpty)
        #expect(try fs.store.pendingUploads().isEmpty)
        // The background pass has nothing to retry.
        await fs.background()
        #expect(cluster.count("upload") == 1)
    }

    @Test func aNewFileWhoseWriteWasRefusedIsNotCommitted() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster) { $0.spoolSize = 1_000_000 }
        let group = try await resolve(fs, "group1").attributes.ino
        let (entry, open) = try await fs.create(parent: group, name: "new", mode: 0o644, flags: O_WRONLY, caller: .root).value
        try await writePastTheSpool(fs, open.handle)
        #expect(await errno { try await fs.flush(entry.attributes.ino, handle: open.handle).value } == ENOSPC)
        try await fs.release(entry.attributes.ino, handle: open.handle).value
        #expect(cluster.count("upload") == 0)
        #expect(await errno { _ = try await fs.lookup(parent: group, name: "new").value } == ENOENT)
        #expect(fs.spool.usedBytes == 0 && fs.spool.files().isEmpty)
        // The spool is free for the next writer.
        let content = randomBytes(900_000)
        let ino = try await writeFile(fs, parent: group, "after", content)
        #expect(try await readAll(fs, ino) == content)
    }
}
