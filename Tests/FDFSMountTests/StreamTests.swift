import FDFSClient
import FDFSMount
import FDFSProtocol
import Foundation
import Testing
import enum FDFSTestSupport.Processes

#if canImport(Glibc)
import Glibc
#endif

/// Large files written in order are streamed to the cluster while they are written
/// (appender file, APPEND steps, REGENERATE at close); anything unusual falls back to the spool.
@Suite struct StreamedUploadTests {
    static let threshold: Int64 = 256 << 10

    func makeStreamingFS(_ dir: TempDir, _ cluster: MemoryCluster) async throws -> FDFSFileSystem {
        try await makeFS(dir, cluster) { $0.streamThreshold = Self.threshold }
    }

    func fileID(_ fs: FDFSFileSystem, _ ino: UInt64) async throws -> FileID {
        try FileID(String(decoding: try await fs.getxattr(ino, name: "user.fdfs.file_id"), as: UTF8.self))
    }

    @Test func aLargeFileWrittenInOrderIsStreamedAndBecomesANormalFile() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeStreamingFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let content = randomBytes(1_234_567)
        let ino = try await writeAcrossTheStreamStart(fs, group, "big.bin", content)
        let id = try await fileID(fs, ino)
        #expect(id.kind == .normal && id.fileExtension == "bin")
        #expect(cluster.bytes(id) == content)
        #expect(cluster.count("uploadAppenderRange") == 1 && cluster.count("appendRange") >= 1 && cluster.count("regenerate") == 1)
        #expect(cluster.count("upload") == 0)
        #expect(cluster.fileCount == 1) // the appender name is gone (regenerated)
        #expect(fs.metrics.streamedUploads.load() == 1)
        #expect(try fs.store.streamCount() == 0)
        #expect(try await readAll(fs, ino) == content)
    }

    @Test func smallFilesAreUploadedInOnePiece() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeStreamingFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let content = randomBytes(Int(Self.threshold) - 1)
        let ino = try await writeFile(fs, parent: group, "small.bin", content)
        #expect(cluster.bytes(try await fileID(fs, ino)) == content)
        #expect(cluster.count("upload") == 1 && cluster.count("uploadAppenderRange") == 0 && cluster.count("regenerate") == 0)
    }

    /// Creates `name` and writes `content` in two parts with a pause between them until the
    /// appender file exists (so the rest goes by APPEND), then closes it.
    func writeAcrossTheStreamStart(_ fs: FDFSFileSystem, _ group: UInt64, _ name: String, _ content: [UInt8]) async throws -> UInt64 {
        let (entry, open) = try await fs.create(parent: group, name: name, mode: 0o644, flags: O_WRONLY | O_CREAT, caller: .root).value
        let ino = entry.attributes.ino
        try write(fs, open.handle, content, 0..<600_000)
        #expect(await Processes.wait(for: 10) { () async in cluster(of: fs).count("uploadAppenderRange") == 1 })
        try write(fs, open.handle, content, 600_000..<content.count)
        try await fs.flush(ino, handle: open.handle).value
        try await fs.release(ino, handle: open.handle).value
        return ino
    }

    /// Writes `content[range]` in 64 KiB pieces.
    func write(_ fs: FDFSFileSystem, _ handle: UInt64, _ content: [UInt8], _ range: Range<Int>) throws {
        var offset = range.lowerBound
        while offset < range.upperBound {
            let n = min(65536, range.upperBound - offset)
            _ = try content[offset..<offset + n].withUnsafeBytes { try fs.write(handle, offset: Int64(offset), bytes: $0) }
            offset += n
        }
    }

    /// Writes `content` in order, then `patch` at `patchOffset`, then closes.
    func writeThenPatch(_ fs: FDFSFileSystem, _ group: UInt64, _ content: [UInt8], patch: [UInt8], at patchOffset: Int) async throws -> UInt64 {
        let (entry, open) = try await fs.create(parent: group, name: "patched", mode: 0o644, flags: O_WRONLY | O_CREAT, caller: .root).value
        try write(fs, open.handle, content, 0..<content.count)
        // Let the stream send its first steps before the out-of-order write.
        #expect(await Processes.wait(for: 10) { () async in cluster(of: fs).count("uploadAppenderRange") == 1 })
        _ = try patch.withUnsafeBytes { try fs.write(open.handle, offset: Int64(patchOffset), bytes: $0) }
        try await fs.flush(entry.attributes.ino, handle: open.handle).value
        try await fs.release(entry.attributes.ino, handle: open.handle).value
        return entry.attributes.ino
    }

    func cluster(of fs: FDFSFileSystem) -> MemoryCluster { fs.cluster as! MemoryCluster }

    @Test func anOutOfOrderWriteFallsBackToTheSpoolAndDeletesTheAppender() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        let fs = try await makeStreamingFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        var content = randomBytes(900_000)
        let patch = randomBytes(1000)
        let ino = try await writeThenPatch(fs, group, content, patch: patch, at: 10)
        content.replaceSubrange(10..<1010, with: patch)
        let id = try await fileID(fs, ino)
        #expect(cluster.bytes(id) == content)
        #expect(cluster.count("upload") == 1 && cluster.count("regenerate") == 0)
        // The partial appender file is deleted from the cluster.
        #expect(await Processes.wait(for: 10) { () async in cluster.fileCount == 1 })
        #expect(fs.metrics.streamedUploads.load() == 0)
    }

    @Test func aFailedAppendFallsBackToTheSpool() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        cluster.state.withLock { $0.failAppends = FSError(.unreachable, "storage died") }
        let fs = try await makeStreamingFS(dir, cluster)
        let group = try await resolve(fs, "group1").attributes.ino
        let content = randomBytes(1_500_000)
        let ino = try await writeAcrossTheStreamStart(fs, group, "retry.bin", content) // close() succeeds: the spool is uploaded instead
        let id = try await fileID(fs, ino)
        #expect(id.kind == .normal && cluster.bytes(id) == content)
        #expect(cluster.count("upload") == 1 && cluster.count("regenerate") == 0)
        #expect(await Processes.wait(for: 10) { () async in cluster.fileCount == 1 })
    }

    @Test func anAppenderStreamedBeforeACrashIsDeletedAtTheNextMount() async throws {
        let dir = TempDir(), cluster = MemoryCluster()
        do {
            let fs = try await makeStreamingFS(dir, cluster)
            let group = try await resolve(fs, "group1").attributes.ino
            let (_, open) = try await fs.create(parent: group, name: "unfinished", mode: 0o644, flags: O_WRONLY, caller: .root).value
            let content = randomBytes(600_000)
            _ = try content.withUnsafeBytes { try fs.write(open.handle, offset: 0, bytes: $0) }
            #expect(await Processes.wait(for: 10) { () async in (try? fs.store.streamCount()) == 1 })
            fs.stop()
            // The process "dies" here, before close().
        }
        let fs = try await makeStreamingFS(dir, cluster)
        await fs.background()
        #expect(cluster.fileCount == 0)
        #expect(await errno { _ = try await resolve(fs, "group1/unfinished") } == ENOENT)
    }
}
