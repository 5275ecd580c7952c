import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore

/// A raw storage-to-storage connection, as a peer's sync thread (or an impostor) would open it:
/// from `localAddress`, announcing `storageID`, then sending SYNC_* commands by hand.
struct SyncPeer {
    let connection: FDFSConnection
    let group: String

    /// Connects to `node` from `localAddress` and, when `announce`, sends REPORT_SERVER_ID.
    static func connect(_ node: StorageNode, from localAddress: String, announce: Bool = true) async throws -> SyncPeer {
        let connection = try await FDFSConnection.connect(
            host: node.ip, port: node.port, connectTimeout: .seconds(5), networkTimeout: .seconds(20), localAddress: localAddress)
        let peer = SyncPeer(connection: connection, group: node.group)
        if announce { try await peer.reportServerID(localAddress) }
        return peer
    }

    func close() { connection.close() }

    func reportServerID(_ id: String) async throws {
        _ = try await connection.call(.reportServerID, body: ReportServerIDRequest(storageID: id).encoded(), maxResponse: 0)
    }

    private var now: UInt32 { UInt32(Date().timeIntervalSince1970) }

    /// SYNC_CREATE_FILE (or SYNC_UPDATE_FILE) with `bytes` as the content.
    func copy(_ id: FileID, _ bytes: [UInt8], update: Bool = false) async throws {
        var body = SyncFileHead(remoteFilename: id.remoteFilename, fileSize: Int64(bytes.count), timestamp: now, group: group).encoded()
        body.writeBytes(bytes)
        _ = try await connection.call(update ? .syncUpdateFile : .syncCreateFile, body: body, maxResponse: 0)
    }

    /// SYNC_MODIFY_FILE (or SYNC_APPEND_FILE) of `bytes` at `offset`.
    func modify(_ id: FileID, offset: Int64, _ bytes: [UInt8], append: Bool = false) async throws {
        var body = SyncModifyHead(remoteFilename: id.remoteFilename, offset: offset, length: Int64(bytes.count), timestamp: now, group: group).encoded()
        body.writeBytes(bytes)
        _ = try await connection.call(append ? .syncAppendFile : .syncModifyFile, body: body, maxResponse: 0)
    }

    func truncate(_ id: FileID, from oldSize: Int64, to newSize: Int64) async throws {
        let request = SyncTruncateRequest(remoteFilename: id.remoteFilename, oldSize: oldSize, newSize: newSize, timestamp: now, group: group)
        _ = try await connection.call(.syncTruncateFile, body: request.encoded(), maxResponse: 0)
    }

    func link(_ link: FileID, to target: FileID) async throws {
        let request = SyncLinkRequest(destFilename: link.remoteFilename, sourceFilename: target.remoteFilename, timestamp: now, group: group)
        _ = try await connection.call(.syncCreateLink, body: request.encoded(), maxResponse: 0)
    }

    func rename(_ old: FileID, to new: FileID) async throws {
        let request = SyncRenameRequest(newFilename: new.remoteFilename, oldFilename: old.remoteFilename, timestamp: now, group: group)
        _ = try await connection.call(.syncRenameFile, body: request.encoded(), maxResponse: 0)
    }

    func delete(_ id: FileID) async throws {
        _ = try await connection.call(.syncDeleteFile, body: SyncDeleteRequest(timestamp: now, group: group, remoteFilename: id.remoteFilename).encoded(), maxResponse: 0)
    }
}

/// A file ID in `group` whose name records `size` and `crc32` (an appender ID when `appender`),
/// as if `source` had stored it: for sending files a storage has never seen.
func madeUpID(group: String = "group1", source: String, size: Int64, crc32: UInt32, appender: Bool = false, ext: String = "bin") throws -> FileID {
    let record = GeneratedName(source: GeneratedName.Source(ipv4: source)!, timestamp: UInt32(Date().timeIntervalSince1970), size: size, crc32: crc32,
                               appender: appender, randomBits: UInt32.random(in: 0...UInt32.max))
    let digits = (0..<7).map { _ in UInt8.random(in: 0...9) }
    let remote = "M00/00/00/\(record.encoded)\(GeneratedName.formattedExtension(ext, digits: digits))"
    return try FileID(group: group, remoteFilename: remote)
}
