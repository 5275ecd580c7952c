import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
import Testing

/// The mount's streamed upload (UPLOAD_APPENDER_FILE, several APPEND_FILE, then
/// REGENERATE_APPENDER_FILENAME) in a real two-member group: the replica must end with the
/// source's bytes, however the sync of the appends and the rename interleave. The source must
/// get there by itself: a C FastDFS replica renames whatever copy it has, so the source may
/// never send SYNC_RENAME for a copy that missed appends (our replicas refuse such a rename,
/// logging "does not match", which must not happen here).
@Suite(.serialized) struct StreamedReplicationTests {
    /// Random content streamed as the mount streams a copy: an appender file of the first
    /// piece, the others appended, then REGENERATE at once.
    static func stream(pieces: Int, of pieceSize: Int, with client: FDFSClient) async throws -> (appender: FileID, final: FileID, content: [UInt8]) {
        let random = FileHandle(forReadingAtPath: "/dev/urandom")!
        defer { try? random.close() }
        let content = [UInt8](random.readData(ofLength: pieces * pieceSize))
        let appender = try await client.upload(ByteBuffer(bytes: content[0..<pieceSize]), options: UploadOptions(fileExtension: "bin", appender: true))
        for piece in 1..<pieces {
            try await client.append(appender, ByteBuffer(bytes: content[(piece * pieceSize)..<((piece + 1) * pieceSize)]))
        }
        return (appender, try await client.regenerateAppenderName(appender), content)
    }

    /// A 50 MB file in five pieces, as `cp` through fdfs-mount sends it, several times over.
    @Test func streamedAppenderConvergesOnTheReplica() async throws {
        let group = try await TwoMemberGroup.start()
        defer { group.destroy() }
        let (a, b, client) = (group.a, group.b, group.client)

        var results: [FileID] = []
        var contents: [[UInt8]] = []
        for _ in 0..<4 {
            let stream = try await Self.stream(pieces: 5, of: 10 << 20, with: client)
            results.append(stream.final)
            contents.append(stream.content)
        }
        for (id, content) in zip(results, contents) {
            #expect(id.generated.size == Int64(content.count))
            for node in [a, b] {
                let converged = (try? await waitUntil(60, "\(id) on \(node.ip)") {
                    FileManager.default.contents(atPath: node.localPath(id)).map { [UInt8]($0) == content } ?? false
                }) != nil
                let size = (try? FileManager.default.attributesOfItem(atPath: node.localPath(id))[.size] as? Int) ?? nil
                #expect(converged, "\(id) on \(node.ip): \(size.map(String.init) ?? "missing"), want \(content.count) bytes")
            }
        }
        for node in [a, b] {
            let refusals = node.logs.split(separator: "\n").filter { $0.contains("does not match") }
            #expect(refusals.isEmpty, "\(node.ip) refused a copy or a rename:\n\(refusals.joined(separator: "\n"))")
        }
    }

    /// Appends still unsent when the appender file is regenerated are sent from its new name,
    /// and the replica renames its copy (a `r` record in its binlog) instead of receiving the
    /// whole file again under the new name (`c`), which doubled the replication of every file
    /// the mount streams.
    @Test func appendsSentAfterTheRegenerateComeFromTheNewNameAndTheReplicaRenames() async throws {
        let group = try await TwoMemberGroup.start()
        defer { group.destroy() }
        let (a, b, client) = (group.a, group.b, group.client)
        var streamed: [(appender: FileID, final: FileID, content: [UInt8])] = []
        for _ in 0..<3 { streamed.append(try await Self.stream(pieces: 6, of: 8 << 20, with: client)) }
        for (appender, final, content) in streamed {
            guard let source = [a, b].first(where: { $0.ip == final.generated.source.description }),
                  let replica = [a, b].first(where: { $0.ip != final.generated.source.description }) else {
                Issue.record("\(final): source \(final.generated.source) is neither storage")
                continue
            }
            let converged = (try? await waitUntil(60, "\(final) on \(replica.ip)") {
                FileManager.default.contents(atPath: replica.localPath(final)).map { [UInt8]($0) == content } ?? false
            }) != nil
            #expect(converged, "\(final) on \(replica.ip)")
            let binlog = (try? String(contentsOfFile: replica.basePath + "/data/sync/binlog.000", encoding: .utf8)) ?? ""
            let records = binlog.split(separator: "\n").map { $0.split(separator: " ").dropFirst().map(String.init) }
            #expect(records.contains(["r", final.remoteFilename, appender.remoteFilename]),
                    "\(replica.ip) renamed its copy of \(appender) (from \(source.ip)):\n\(binlog)")
            #expect(!records.contains { $0.first == "c" && $0.dropFirst().first == final.remoteFilename },
                    "\(replica.ip) received \(final) whole:\n\(binlog)")
        }
    }

    /// A replica that has part of an append (its copy was sent while the source was writing
    /// that append) takes the append whole instead of asking for the whole file; one it has
    /// all of is "already so"; one beyond its end still needs the whole file.
    @Test func aReplicaTakesAnAppendItHasPartOf() async throws {
        let group = try await TwoMemberGroup.start()
        defer { group.destroy() }
        let (a, b) = (group.a, group.b)
        let content = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let id = try madeUpID(source: a.ip, size: 0, crc32: 0, appender: true)
        let peer = try await SyncPeer.connect(b, from: a.ip)
        defer { peer.close() }
        // The create carried the first 100 bytes and 30 of the append that followed.
        try await peer.copy(id, Array(content[0..<130]))
        try await peer.modify(id, offset: 100, Array(content[100..<200]), append: true)
        #expect(FileManager.default.contents(atPath: b.localPath(id)).map { [UInt8]($0) } == Array(content[0..<200]))
        #expect(await statusOf { try await peer.modify(id, offset: 150, Array(content[150..<200]), append: true) } == .EEXIST)
        #expect(await statusOf { try await peer.modify(id, offset: 250, Array(content[250..<300]), append: true) } == .ENOENT)
        #expect(FileManager.default.contents(atPath: b.localPath(id)).map { [UInt8]($0) } == Array(content[0..<200]))
    }
}
