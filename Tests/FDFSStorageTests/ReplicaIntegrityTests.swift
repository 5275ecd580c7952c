import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
import Testing

/// A replica never stores or serves a normal file whose bytes differ from what its ID records
/// (size and CRC32), whichever sync command brings it.
@Suite(.serialized) struct ReplicaIntegrityTests {
    @Test func replicaRefusesFilesThatDoNotMatchTheirID() async throws {
        let group = try await TwoMemberGroup.start(httpOnB: true)
        defer { group.destroy() }
        let (a, b) = (group.a, group.b)

        let good = Array("twenty bytes of data".utf8)
        let bad = Array("twenty bytes of junk".utf8)
        let crc = CRC32.checksum(good)
        /// Neither on B's disk nor served by B (DOWNLOAD_FILE, HTTP).
        func notServed(_ id: FileID, _ what: String) async throws {
            #expect(!FileManager.default.fileExists(atPath: b.localPath(id)), "\(what): stored")
            let direct = try await StorageClient.connect(b)
            defer { direct.close() }
            #expect(await statusOf { _ = try await direct.download(id) } == .ENOENT, "\(what): DOWNLOAD_FILE")
            #expect(try httpRequest(host: b.ip, port: b.httpPort, path: "/\(id.description)").status != 200, "\(what): HTTP")
        }

        // Sent as member A would send them.
        let peer = try await SyncPeer.connect(b, from: a.ip)
        defer { peer.close() }
        // Same size, other bytes: the CRC32 in the name does not match.
        let wrongBytes = try madeUpID(source: a.ip, size: Int64(good.count), crc32: crc)
        #expect(await statusOf { try await peer.copy(wrongBytes, bad) } != .ok)
        try await notServed(wrongBytes, "create with other bytes")
        // A prefix of the right bytes: the size in the name does not match.
        let peer2 = try await SyncPeer.connect(b, from: a.ip)
        defer { peer2.close() }
        let short = try madeUpID(source: a.ip, size: Int64(good.count), crc32: crc)
        #expect(await statusOf { try await peer2.copy(short, Array(good.prefix(9))) } != .ok)
        #expect(await statusOf { try await peer2.copy(short, Array(good.prefix(9)), update: true) } != .ok)
        try await notServed(short, "create and update with a prefix")
        // A short appender copy renamed into a normal name that records the whole file.
        let peer3 = try await SyncPeer.connect(b, from: a.ip)
        defer { peer3.close() }
        let appender = try madeUpID(source: a.ip, size: 0, crc32: 0, appender: true)
        try await peer3.copy(appender, Array(good.prefix(9)))
        let renamed = try madeUpID(source: a.ip, size: Int64(good.count), crc32: crc)
        #expect(await statusOf { try await peer3.rename(appender, to: renamed) } != .ok)
        try await notServed(renamed, "rename of a short appender copy")

        // The right bytes are taken and served, by create and by rename.
        let peer4 = try await SyncPeer.connect(b, from: a.ip)
        defer { peer4.close() }
        let right = try madeUpID(source: a.ip, size: Int64(good.count), crc32: crc)
        try await peer4.copy(right, good)
        let fullAppender = try madeUpID(source: a.ip, size: 0, crc32: 0, appender: true)
        try await peer4.copy(fullAppender, good)
        let renamedRight = try madeUpID(source: a.ip, size: Int64(good.count), crc32: crc)
        try await peer4.rename(fullAppender, to: renamedRight)
        let direct = try await StorageClient.connect(b)
        defer { direct.close() }
        #expect(try await direct.download(right) == good)
        #expect(try await direct.download(renamedRight) == good)
        #expect(b.logs.contains("does not match"), "the refusals are logged")

        // A normal file is immutable: SYNC_MODIFY / SYNC_APPEND / SYNC_TRUNCATE do not touch it.
        let changes: [(String, @Sendable (SyncPeer) async throws -> Void)] = [
            ("SYNC_MODIFY_FILE", { try await $0.modify(right, offset: 0, Array("EVIL".utf8)) }),
            ("SYNC_APPEND_FILE", { try await $0.modify(right, offset: Int64(good.count), Array("EVIL".utf8), append: true) }),
            ("SYNC_TRUNCATE_FILE", { try await $0.truncate(right, from: Int64(good.count), to: 4) }),
        ]
        for (name, change) in changes {
            let member = try await SyncPeer.connect(b, from: a.ip)
            #expect(await statusOf { try await change(member) } == .EINVAL, "\(name) of a normal file")
            member.close()
        }
        #expect(try await direct.download(right) == good)
    }
}
