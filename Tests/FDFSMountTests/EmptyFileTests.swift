import FDFSClient
import FDFSMount
import FDFSProtocol
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Empty files are metadata only (SEMANTICS.md, "Writes"): no upload, no file ID, 0 bytes read
/// without the cluster; a later write uploads as any write does.
@Suite struct EmptyFileTests {
    @Test func anEmptyFileIsCommittedWithoutAnUploadAndSurvivesARestart() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        var ino: UInt64 = 0
        do {
            let fs = try await makeFS(dir, cluster)
            let group = try await resolve(fs, "group1").attributes.ino
            ino = try await writeFile(fs, parent: group, "empty", [])
            #expect(cluster.count("upload") == 0 && cluster.fileCount == 0)
            #expect(fs.metrics.emptyCommits.load() == 1)
            let row = try #require(try fs.store.entry(ino))
            #expect(row.fileID == nil && row.size == 0 && row.state == Entry.committed)
            let reads = cluster.count("read")
            #expect(try await readAll(fs, ino) == [])
            #expect(cluster.count("read") == reads)
            #expect(await errno { _ = try await fs.getxattr(ino, name: "user.fdfs.file_id") } == ENODATA)
            #expect(await errno { try await fs.setxattr(ino, name: "user.fdfs.meta.k", value: Array("v".utf8)) } == EOPNOTSUPP)
            #expect(try fs.store.export(all: false).isEmpty)
            #expect(try fs.store.export(all: true).map { "\($0.path) \($0.fileID ?? "-") \($0.size)" } == ["group1/empty - 0"])
            fs.stop()
        }
        // A name closed empty is not a name "created but never closed": a restart keeps it.
        let fs = try await makeFS(dir, cluster)
        let again = try await resolve(fs, "group1/empty")
        #expect(again.attributes.ino == ino && again.attributes.size == 0)
    }

    @Test func writingAnEmptyFileLaterUploadsIt() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "later.txt", [])
        let open = try await fs.open(ino, flags: O_WRONLY)
        _ = try Array("content".utf8).withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        #expect(cluster.count("upload") == 1)
        let id = try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
        #expect(cluster.bytes(id) == Array("content".utf8) && id.fileExtension == "txt")
        #expect(try await readAll(fs, ino) == Array("content".utf8))
    }

    @Test func truncatingAFileToEmptyDropsItsClusterFile() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let ino = try await writeFile(fs, parent: group, "f", Array("old".utf8))
        let old = try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
        // O_TRUNC and close without a write: the name is empty, the old file deleted.
        let open = try await fs.open(ino, flags: O_WRONLY | O_TRUNC)
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        #expect(cluster.count("upload") == 1)
        #expect(cluster.bytes(old) == nil, "the replaced file is deleted")
        let row = try #require(try fs.store.entry(ino))
        #expect(row.fileID == nil && row.size == 0)
        #expect(try await readAll(fs, ino) == [])
        // truncate(2) without a descriptor, of a file with content: the same.
        let other = try await writeFile(fs, parent: group, "g", Array("xyz".utf8))
        var changes = AttributeChanges()
        changes.size = 0
        _ = try await fs.setattr(other, changes: changes).value
        #expect(try fs.store.entry(other)?.fileID == nil)
        #expect(cluster.fileCount == 0)
    }

    @Test func mknodOfARegularFileMakesAnEmptyFile() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let reply = try await fs.mknod(parent: group, name: "node", mode: UInt32(S_IFREG) | 0o600, rdev: 0, caller: .root)
        #expect(reply.attributes.size == 0 && reply.attributes.nlink == 1)
        #expect(cluster.count("upload") == 0)
        #expect(try fs.store.entry(reply.attributes.ino)?.state == Entry.committed)
    }
}
