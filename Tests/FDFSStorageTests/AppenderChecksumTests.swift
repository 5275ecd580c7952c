import FDFSProtocol
import Foundation
import Testing
@testable import FDFSStorage

#if canImport(Glibc)
import Glibc
#endif

/// The running checksums of appender files (REGENERATE_APPENDER_FILENAME without a re-read):
/// the table's rules, then a storage that uses them.
@Suite struct AppenderChecksumTests {
    func info(size: Int64, mtime: Int = 1, inode: UInt = 7) -> stat {
        var info = stat()
        info.st_size = Int(size)
        info.st_mtim = timespec(tv_sec: mtime, tv_nsec: 0)
        info.st_ino = inode
        return info
    }

    @Test func appendsInOrderKeepTheChecksumUntilTheRename() throws {
        let table = AppenderChecksums()
        table.uploaded("/f", crc: 11, info: info(size: 10))
        let before = try #require(table.beforeAppend("/f", at: 10))
        #expect(before.crc == 11)
        table.appended("/f", from: before, crc: 22, info: info(size: 15, mtime: 2))
        #expect(table.take("/f", matching: info(size: 15, mtime: 2)) == 22)
        #expect(table.count == 0) // taken
    }

    @Test func anythingElseForgetsIt() throws {
        let table = AppenderChecksums()
        // An append that does not start at the known end.
        table.uploaded("/a", crc: 1, info: info(size: 10))
        #expect(table.beforeAppend("/a", at: 12) == nil)
        #expect(table.take("/a", matching: info(size: 10)) == nil)
        // MODIFY, TRUNCATE, DELETE, replicated changes.
        table.uploaded("/b", crc: 1, info: info(size: 10))
        table.forget("/b")
        #expect(table.beforeAppend("/b", at: 10) == nil)
        // The file changed behind the table's back: size, mtime or inode differ.
        for other in [info(size: 11), info(size: 10, mtime: 3), info(size: 10, inode: 8)] {
            table.uploaded("/c", crc: 1, info: info(size: 10))
            #expect(table.take("/c", matching: other) == nil)
        }
    }

    @Test func twoAppendsThatOverlapInTimeForgetIt() throws {
        let table = AppenderChecksums()
        table.uploaded("/f", crc: 1, info: info(size: 10))
        let first = try #require(table.beforeAppend("/f", at: 10))
        let second = try #require(table.beforeAppend("/f", at: 10))
        table.appended("/f", from: first, crc: 2, info: info(size: 20, mtime: 2))
        table.appended("/f", from: second, crc: 3, info: info(size: 20, mtime: 3))
        #expect(table.beforeAppend("/f", at: 20) == nil)
        // A forget between the start and the end of an append wins too.
        table.uploaded("/g", crc: 1, info: info(size: 10))
        let started = try #require(table.beforeAppend("/g", at: 10))
        table.forget("/g")
        table.appended("/g", from: started, crc: 2, info: info(size: 20))
        #expect(table.take("/g", matching: info(size: 20)) == nil)
    }

    @Test func theOldestEntriesGoFirstAtCapacity() {
        let table = AppenderChecksums(capacity: 2)
        table.uploaded("/1", crc: 1, info: info(size: 1))
        table.uploaded("/2", crc: 2, info: info(size: 2))
        table.uploaded("/3", crc: 3, info: info(size: 3))
        #expect(table.count == 2)
        #expect(table.take("/1", matching: info(size: 1)) == nil)
        #expect(table.take("/3", matching: info(size: 3)) == 3)
    }

    @Test func aRegeneratedNameCarriesTheChecksumOfItsContent() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        // Appended in order only: the running checksum names it.
        var content = Array("head-".utf8)
        let id = try await client.upload(content, ext: "bin", appender: true)
        for piece in ["one-", "two-", String(repeating: "x", count: 300_000)] {
            try await client.append(id, Array(piece.utf8))
            content += Array(piece.utf8)
        }
        let regenerated = try await client.regenerate(id)
        #expect(regenerated.generated.crc32 == CRC32.checksum(content) && regenerated.generated.size == Int64(content.count))
        #expect(try await client.download(regenerated) == content)
        #expect(node.process?.log.contains("regenerate \(id): checksum kept while it was appended") == true)

        // Replaced on disk behind the storage's back (same size, another inode): read again.
        let other = try await client.upload(Array("0123456789".utf8), ext: "bin", appender: true)
        try await client.append(other, Array("abc".utf8))
        let path = node.localPath(other), swapped = Array("ABCDEFGHIJKLM".utf8)
        try Data(swapped).write(to: URL(fileURLWithPath: path + ".new"))
        #expect(rename(path + ".new", path) == 0)
        let renamed = try await client.regenerate(other)
        #expect(renamed.generated.crc32 == CRC32.checksum(swapped))
        #expect(node.process?.log.contains("regenerate \(other): checksum read from the file") == true)
    }
}
