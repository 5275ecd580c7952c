import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
import Testing

/// Replication commands are obeyed only from the storages the tracker lists as members of the
/// group; anyone else gets EACCES and the connection is closed, and nothing changes.
@Suite(.serialized) struct SyncAccessTests {
    func read(_ node: StorageNode, _ id: FileID) -> [UInt8]? {
        FileManager.default.contents(atPath: node.localPath(id)).map { [UInt8]($0) }
    }

    @Test func syncCommandsFromNonMembersAreRefused() async throws {
        let group = try await TwoMemberGroup.start()
        defer { group.destroy() }
        let (a, b, client) = (group.a, group.b, group.client)
        let content = Array("a normal file nobody may rewrite\n".utf8)
        let file = try await client.upload(content, options: UploadOptions(fileExtension: "txt"))
        let appenderContent = Array("appender content".utf8)
        let appender = try await client.upload(appenderContent, options: UploadOptions(appender: true))
        try await waitUntil(20, "files on both") {
            [a, b].allSatisfy { read($0, file) == content && read($0, appender) == appenderContent }
        }

        let fresh = try madeUpID(source: a.ip, size: 4, crc32: CRC32.checksum(Array("evil".utf8)))
        let link = try madeUpID(source: a.ip, size: 4, crc32: 0, ext: "lnk")
        let renamed = try madeUpID(source: a.ip, size: Int64(content.count), crc32: CRC32.checksum(content))
        let attempts: [(String, @Sendable (SyncPeer) async throws -> Void)] = [
            ("SYNC_MODIFY_FILE", { try await $0.modify(file, offset: 0, Array("EVIL".utf8)) }),
            ("SYNC_APPEND_FILE", { try await $0.modify(appender, offset: Int64(appenderContent.count), Array("EVIL".utf8), append: true) }),
            ("SYNC_TRUNCATE_FILE", { try await $0.truncate(file, from: Int64(content.count), to: 1) }),
            ("SYNC_TRUNCATE_FILE appender", { try await $0.truncate(appender, from: Int64(appenderContent.count), to: 1) }),
            ("SYNC_CREATE_FILE", { try await $0.copy(fresh, Array("evil".utf8)) }),
            ("SYNC_UPDATE_FILE", { try await $0.copy(file, Array("evil".utf8), update: true) }),
            ("SYNC_CREATE_LINK", { try await $0.link(link, to: file) }),
            ("SYNC_RENAME_FILE", { try await $0.rename(file, to: renamed) }),
            ("SYNC_DELETE_FILE", { try await $0.delete(file) }),
        ]
        for from in ["127.0.0.1", "127.0.0.9"] {
            // REPORT_SERVER_ID is refused too.
            let announcing = try await SyncPeer.connect(b, from: from, announce: false)
            #expect(await statusOf { try await announcing.reportServerID(from) } == .EACCES, "REPORT_SERVER_ID from \(from)")
            #expect(await statusOf { try await announcing.reportServerID(from) } != .EACCES, "connection closed after the refusal")
            announcing.close()
            for (name, attempt) in attempts {
                let peer = try await SyncPeer.connect(b, from: from, announce: false)
                #expect(await statusOf { try await attempt(peer) } == .EACCES, "\(name) from \(from)")
                peer.close()
            }
        }
        // A wrongly accepted change on B would reach A before anything B stores later (the
        // binlog is replayed in order): once a marker stored on B has reached A, check both.
        let direct = try await StorageClient.connect(b)
        let marker = try await direct.upload(Array("marker".utf8), ext: "txt")
        direct.close()
        try await waitUntil(30, "the marker on A") { read(a, marker) != nil }
        for node in [a, b] {
            #expect(read(node, file) == content, "\(node.ip): file unchanged")
            #expect(read(node, appender) == appenderContent, "\(node.ip): appender unchanged")
            for id in [fresh, link, renamed] {
                #expect(!FileManager.default.fileExists(atPath: node.localPath(id)), "\(node.ip): \(id) not created")
            }
        }
        #expect(b.logs.contains("not a member"), "the refusal is logged")

        // The members themselves still replicate, both ways.
        for target in [a, b] {
            let direct = try await StorageClient.connect(target)
            let later = try await direct.upload(Array("after the refusals on \(target.ip)".utf8), ext: "log")
            direct.close()
            try await waitUntil(20, "\(later) on both") { [a, b].allSatisfy { read($0, later) == Array("after the refusals on \(target.ip)".utf8) } }
        }
        try await client.append(appender, ByteBuffer(string: " more"))
        let grown = appenderContent + Array(" more".utf8)
        try await waitUntil(20, "appends on both") { [a, b].allSatisfy { read($0, appender) == grown } }
    }
}
