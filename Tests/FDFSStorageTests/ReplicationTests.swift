import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
import Testing

/// Our tracker and storages together: reporting, replication, catch-up.
@Suite(.serialized) struct ReplicationTests {
    func read(_ node: StorageNode, _ id: FileID) -> [UInt8]? {
        FileManager.default.contents(atPath: node.localPath(id)).map { [UInt8]($0) }
    }

    func exists(_ node: StorageNode, _ id: FileID) -> Bool {
        FileManager.default.fileExists(atPath: node.localPath(id))
    }

    func bothActive(_ client: FDFSClient, _ a: StorageNode, _ b: StorageNode) async -> Bool {
        let first = await trackerStatus(client, a)
        let second = await trackerStatus(client, b)
        return first == .active && second == .active
    }

    func activeOnBoth(_ clients: [FDFSClient], _ a: StorageNode, _ b: StorageNode) async -> Bool {
        for client in clients where !(await bothActive(client, a, b)) { return false }
        return true
    }

    @Test func groupReplicatesAndNewMemberCatchesUp() async throws {
        let tracker = TrackerNode()
        let port = sharedFreePort(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        let a = StorageNode(ip: "127.0.0.2", port: port, trackers: [tracker.address])
        let b = StorageNode(ip: "127.0.0.3", port: port, trackers: [tracker.address])
        let c = StorageNode(ip: "127.0.0.4", port: port, trackers: [tracker.address])
        defer { c.destroy(); b.destroy(); a.destroy(); tracker.destroy() }
        try await tracker.start()
        try await a.start()
        try await b.start()
        let client = tracker.client()
        defer { Task { await client.shutdown() } }
        try await waitUntil(30, "A and B active") {
            await bothActive(client, a, b)
        }

        // Upload through the tracker; the file shows up on both members.
        let content = Array("replicated content\n".utf8)
        let id = try await client.upload(content, options: UploadOptions(fileExtension: "txt"))
        try await waitUntil(20, "file on both") { read(a, id) == content && read(b, id) == content }
        let source = id.generated.source.description == a.ip ? a : b
        let other = source === a ? b : a
        let direct = try await StorageClient.connect(other)
        #expect(try await direct.download(id) == content)
        direct.close()
        // The replica keeps the source's timestamp as mtime.
        let attributes = try FileManager.default.attributesOfItem(atPath: other.localPath(id))
        #expect(Int((attributes[.modificationDate] as! Date).timeIntervalSince1970) == Int(id.generated.timestamp))

        // Metadata and appender changes propagate.
        try await client.setMetadata(id, try FDFSMetadata([("k", "v")]))
        let appender = try await client.upload(Array("abc".utf8), options: UploadOptions(appender: true))
        try await client.append(appender, ByteBuffer(string: "def"))
        try await client.modify(appender, offset: 1, ByteBuffer(string: "XY"))
        try await client.truncate(appender, size: 5)
        try await waitUntil(20, "appender and metadata on both") {
            read(a, appender) == Array("aXYde".utf8) && read(b, appender) == Array("aXYde".utf8)
                && FileManager.default.fileExists(atPath: other.localPath(id) + "-m")
        }
        let regenerated = try await client.regenerateAppenderName(appender)
        try await waitUntil(20, "rename on both") { read(a, regenerated) == Array("aXYde".utf8) && read(b, regenerated) == Array("aXYde".utf8) && !exists(a, appender) && !exists(b, appender) }

        // Delete propagates, metadata file included.
        let doomed = try await client.upload(Array("short-lived".utf8), options: UploadOptions(fileExtension: "txt"))
        try await waitUntil(20, "doomed on both") { exists(a, doomed) && exists(b, doomed) }
        try await client.delete(doomed)
        try await waitUntil(20, "delete on both") { !exists(a, doomed) && !exists(b, doomed) }

        // A third member started later gets everything by full sync and becomes ACTIVE.
        try await c.start()
        try await waitUntil(60, "C has every file") {
            read(c, id) == content && read(c, regenerated) == Array("aXYde".utf8) && !exists(c, doomed)
                && FileManager.default.fileExists(atPath: c.localPath(id) + "-m")
        }
        try await waitUntil(30, "C active") { await trackerStatus(client, c) == .active }
        let later = try await client.upload(Array("after C joined".utf8), options: UploadOptions(fileExtension: "log"))
        try await waitUntil(20, "new file on all three") { [a, b, c].allSatisfy { read($0, later) == Array("after C joined".utf8) } }
    }

    /// Found by Scripts/chaos (sync-kill): a member wiped and started again in a group with two
    /// trackers asks one of them for a sync source (SYNC_DEST_REQ: WAIT_SYNC there) while the
    /// other still lists it ONLINE and soon ACTIVE. When the source saw ACTIVE first it went on
    /// from its old mark for that member, so the wiped member became ACTIVE and never got the
    /// files written before; the tracker that had it WAIT_SYNC kept it there for good. And the
    /// other tracker kept the source and `until` of the first sync, so a source asking it went
    /// on from its old mark too.
    @Test func aWipedMemberGetsEveryOldFileWithTwoTrackers() async throws {
        let first = TrackerNode(), second = TrackerNode()
        let port = sharedFreePort(["127.0.0.2", "127.0.0.3"])
        let a = StorageNode(ip: "127.0.0.2", port: port, trackers: [first.address, second.address])
        let b = StorageNode(ip: "127.0.0.3", port: port, trackers: [first.address, second.address])
        defer { b.destroy(); a.destroy(); second.destroy(); first.destroy() }
        try await first.start()
        try await second.start()
        try await a.start()
        try await b.start()
        let clients = [first.client(), second.client()]
        defer { Task { for client in clients { await client.shutdown() } } }
        try await waitUntil(30, "A and B active") { await activeOnBoth(clients, a, b) }
        var files: [(FileID, [UInt8])] = []
        for index in 0..<20 {
            let bytes = Array("old file \(index) ".utf8) + [UInt8](repeating: UInt8(index), count: 20_000)
            files.append((try await clients[0].upload(bytes, options: UploadOptions(fileExtension: "bin")), bytes))
        }
        try await waitUntil(30, "the files on both") { files.allSatisfy { read(a, $0.0) == $0.1 && read(b, $0.0) == $0.1 } }
        for round in 1...3 {
            b.stop()
            try FileManager.default.removeItem(atPath: b.storePath)
            try FileManager.default.removeItem(atPath: b.basePath)
            try FileManager.default.createDirectory(atPath: b.storePath, withIntermediateDirectories: true)
            try await b.start()
            try await waitUntil(60, "round \(round): every old file on the wiped member") { files.allSatisfy { read(b, $0.0) == $0.1 } }
            try await waitUntil(60, "round \(round): B active on both trackers") { await activeOnBoth(clients, a, b) }
        }
    }

    @Test func killedSourceResumesSync() async throws {
        let tracker = TrackerNode()
        let port = sharedFreePort(["127.0.0.2", "127.0.0.3"])
        let a = StorageNode(ip: "127.0.0.2", port: port, trackers: [tracker.address])
        let b = StorageNode(ip: "127.0.0.3", port: port, trackers: [tracker.address])
        defer { b.destroy(); a.destroy(); tracker.destroy() }
        try await tracker.start()
        try await a.start()
        try await b.start()
        let client = tracker.client()
        defer { Task { await client.shutdown() } }
        try await waitUntil(30, "A and B active") { await bothActive(client, a, b) }
        b.stop()
        try await waitUntil(30, "B offline") { await trackerStatus(client, b) != .active }

        let direct = try await StorageClient.connect(a)
        var files: [(FileID, [UInt8])] = []
        for index in 0..<40 {
            let bytes = Array("file number \(index) ".utf8) + [UInt8](repeating: UInt8(index), count: 50_000)
            files.append((try await direct.upload(bytes, ext: "bin"), bytes))
        }
        direct.close()
        try await b.start()
        try await waitUntil(30, "sync started") { files.contains { exists(b, $0.0) } }
        a.kill9()
        try await a.start()
        try await waitUntil(60, "every file on B") { files.allSatisfy { read(b, $0.0) == $0.1 } }
        // Nothing else appeared on B.
        let stored = try FileManager.default.subpathsOfDirectory(atPath: b.storePath + "/data").filter { $0.split(separator: "/").count == 3 }
        #expect(stored.count == files.count)
    }
}
