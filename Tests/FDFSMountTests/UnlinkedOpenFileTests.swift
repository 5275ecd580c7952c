import FDFSClient
import FDFSMount
import FDFSProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// POSIX: a descriptor opened before `unlink` (or before a rename replaced its file) keeps
/// working; the file goes away when the last descriptor closes.
@Suite struct UnlinkedOpenFileTests {
    func fileID(_ fs: FDFSFileSystem, _ ino: UInt64) async throws -> FileID {
        try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
    }

    func write(_ fs: FDFSFileSystem, _ handle: UInt64, at offset: Int64, _ bytes: [UInt8]) throws {
        _ = try bytes.withUnsafeBytes { try fs.write(handle, offset: offset, bytes: $0) }
    }

    @Test func aReaderKeepsReadingAfterUnlinkAndTheClusterFileGoesAtTheLastClose() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let content = randomBytes(150_000)
        let ino = try await writeFile(fs, parent: group, "doomed", content)
        let id = try await fileID(fs, ino)
        let open = try await fs.open(ino, flags: O_RDONLY)
        try await fs.unlink(parent: group, name: "doomed")
        #expect(await errno { _ = try await fs.lookup(parent: group, name: "doomed").value } == ENOENT)
        // fstat: no links, the size; read: the bytes, still in the cluster.
        let attributes = try fs.getattr(ino).attributes
        #expect(attributes.nlink == 0)
        #expect(attributes.size == 150_000)
        #expect(Array(try await fs.read(open.handle, offset: 0, size: content.count).bytes) == content)
        #expect(cluster.bytes(id) == content)
        #expect(try fs.store.exportAll().isEmpty)
        try await fs.release(ino, handle: open.handle).value
        #expect(cluster.bytes(id) == nil)
        #expect(await errno { _ = try fs.getattr(ino) } == ENOENT)
        #expect(try fs.store.deletions().isEmpty)
    }

    @Test func aWriterUnlinkedWhileOpenWritesOnAndNothingIsCommitted() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        // A new file.
        let (entry, open) = try await fs.create(parent: group, name: "scratch", mode: 0o644, flags: O_RDWR, caller: .root).value
        let ino = entry.attributes.ino
        try write(fs, open.handle, at: 0, [1, 2, 3])
        try await fs.unlink(parent: group, name: "scratch")
        try write(fs, open.handle, at: 3, [4, 5])
        let attributes = try fs.getattr(ino).attributes
        #expect(attributes.nlink == 0 && attributes.size == 5)
        #expect(Array(try await fs.read(open.handle, offset: 0, size: 10).bytes) == [1, 2, 3, 4, 5])
        try await fs.flush(ino, handle: open.handle).value // close() succeeds: nothing to keep
        try await fs.release(ino, handle: open.handle).value
        #expect(cluster.count("upload") == 0)
        #expect(await errno { _ = try await fs.lookup(parent: group, name: "scratch").value } == ENOENT)
        // A committed file being rewritten (copy-on-write): its old cluster file goes at the last close.
        let old = try await writeFile(fs, parent: group, "old", [9, 9, 9])
        let oldID = try await fileID(fs, old)
        let rewrite = try await fs.open(old, flags: O_RDWR)
        try write(fs, rewrite.handle, at: 0, [8])
        try await fs.unlink(parent: group, name: "old")
        try write(fs, rewrite.handle, at: 3, [7])
        #expect(Array(try await fs.read(rewrite.handle, offset: 0, size: 10).bytes) == [8, 9, 9, 7])
        try await fs.flush(old, handle: rewrite.handle).value
        #expect(cluster.bytes(oldID) == [9, 9, 9])
        try await fs.release(old, handle: rewrite.handle).value
        #expect(cluster.count("upload") == 1)
        #expect(cluster.bytes(oldID) == nil)
        #expect(await errno { _ = try await fs.lookup(parent: group, name: "old").value } == ENOENT)
        #expect(fs.spool.usedBytes == 0 && fs.spool.files().isEmpty)
        #expect(try fs.store.exportAll().isEmpty)
    }

    @Test func aFileReplacedByRenameStaysReadableThroughItsDescriptor() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let target = try await writeFile(fs, parent: group, "target", [1, 1, 1])
        let targetID = try await fileID(fs, target)
        try await writeFile(fs, parent: group, "new", [2, 2])
        let open = try await fs.open(target, flags: O_RDONLY)
        try await fs.rename(parent: group, name: "new", newParent: group, newName: "target", flags: 0)
        #expect(try fs.getattr(target).attributes.nlink == 0)
        #expect(Array(try await fs.read(open.handle, offset: 0, size: 10).bytes) == [1, 1, 1])
        #expect(try await readAll(fs, try await resolve(fs, "group1/target").attributes.ino) == [2, 2])
        try await fs.release(target, handle: open.handle).value
        #expect(cluster.bytes(targetID) == nil)
        #expect(try fs.store.exportAll().map(\.path) == ["group1/target"])
    }

    @Test func anUnlinkedFileStillOpenAtACrashIsDeletedByTheNextMount() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        var id: FileID?
        do {
            let fs = try await makeFS(dir, cluster)
            let group = try await resolve(fs, "group1").attributes.ino
            let ino = try await writeFile(fs, parent: group, "held", [5, 5])
            id = try await fileID(fs, ino)
            _ = try await fs.open(ino, flags: O_RDONLY)
            try await fs.unlink(parent: group, name: "held")
            fs.stop()
            // The process "dies" with the descriptor open.
        }
        #expect(cluster.bytes(id!) == [5, 5])
        let fs = try await makeFS(dir, cluster)
        #expect(cluster.bytes(id!) == nil)
        #expect(try fs.store.exportAll().isEmpty)
        #expect(try fs.store.deletions().isEmpty)
    }
}
