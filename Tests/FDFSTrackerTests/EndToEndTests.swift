import FDFSProtocol
import Foundation
import NIOCore
import Testing

/// Runs the real `fdfs-trackerd` executable and talks to it over loopback like a storage and a
/// client would.
@Suite("fdfs-trackerd end to end")
struct EndToEndTests {
    static func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fdfs-e2e-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func join() -> ByteBuffer {
        StorageJoinRequest(
            group: "group1", storagePort: 23000, joinTime: 1_795_256_751, upTime: 1_795_257_205, initFlag: true,
            currentTrackerIP: "127.0.0.1", trackers: ["127.0.0.1:22122"]
        ).encoded()
    }

    /// LIST_STORAGE for group1 → status of each storage by id.
    static func statuses(_ client: RawClient) throws -> [String: UInt8] {
        let reply = try client.call(.listStorage, ListStorageRequest(group: "group1").encoded())
        guard reply.status == 0 else { return [:] }
        return Dictionary(uniqueKeysWithValues: try StorageStat.decodeList(reply.body).map { ($0.id, $0.status) })
    }

    /// JOIN, SYNC_DEST_REQ, BEAT and DISK_USAGE: the storage ends ACTIVE.
    static func playStorage(_ storage: RawClient) throws {
        let joined = try storage.call(.storageJoin, join())
        #expect(joined.status == 0)
        _ = try StorageJoinResponse.decode(joined.body)
        let dest = try storage.call(.storageSyncDestRequest)
        #expect(dest.status == 0 && dest.body.readableBytes == 0)  // alone: nothing to copy
        let beat = try storage.call(.storageBeat, StorageBeatRequest(counters: StorageCounters()).encoded())
        #expect(beat.status == 0)
        let changes = try TrackerBeatResponse.decode(beat.body)
        #expect(changes.leader?.ip == "127.0.0.1")
        #expect(changes.members?.map(\.id) == ["127.0.0.1"])
        let usage = StorageDiskUsageReport(paths: [StorePathUsage(totalMB: 100_000, freeMB: 60_000)])
        #expect(try storage.call(.storageReportDiskUsage, usage.encoded()).status == 0)
    }

    @Test("storage joins, client queries, bad frames close only their connection, state survives a restart")
    func fullCycle() throws {
        let base = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        var daemon = try TrackerDaemon(basePath: base)
        defer { daemon.stop() }

        let storage = try RawClient(port: daemon.port)
        try Self.playStorage(storage)

        let client = try RawClient(port: daemon.port)
        let store = try client.call(.queryStoreWithoutGroupOne)
        #expect(store.status == 0)
        #expect(try StoreTarget.decode(store.body) == StoreTarget(group: "group1", storage: StorageEndpoint(ip: "127.0.0.1", port: 23000), storePathIndex: 0))
        let groups = try client.call(.listAllGroups)
        #expect(groups.body.readableBytes == GroupStat.modernSize)
        let group = try #require(try GroupStat.decodeList(groups.body).first)
        #expect(group.name == "group1" && group.storageCount == 1 && group.writableCount == 1 && group.freeMB == 60_000)
        #expect(try Self.statuses(client) == ["127.0.0.1": StorageStatus.active.rawValue])

        // Garbage: a huge pkg_len, a negative pkg_len, random bytes, a truncated frame.
        var huge: [UInt8] = [0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 101, 0]
        huge += (0..<64).map { _ in UInt8.random(in: 0...255) }
        let negative: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 91, 0]
        var random: [UInt8] = [0x7f] + (0..<200).map { _ in UInt8.random(in: 0...255) }
        random[8] = 91
        for bytes in [huge, negative, random] {
            let bad = try RawClient(port: daemon.port)
            try bad.send(bytes)
            try waitUntil("the server to close a connection that sent garbage", seconds: 10) { bad.isClosedByPeer() }
        }
        let truncated = try RawClient(port: daemon.port)
        try truncated.send(FDFSHeader(bodyLength: 100, command: .listAllGroups).encoded().bytes + [1, 2, 3])
        truncated.shutdownWrite()
        try waitUntil("the server to close a truncated frame", seconds: 10) { truncated.isClosedByPeer() }
        let unknown = try client.call(FDFSCommand(rawValue: 250))
        #expect(unknown.status == FDFSStatus.EINVAL.rawValue)
        #expect(try client.call(.activeTest).status == 0)
        #expect(try storage.call(.storageBeat).status == 0)  // the storage's connection survived
        #expect(try Self.statuses(client) == ["127.0.0.1": StorageStatus.active.rawValue])

        // Restart: the group and the storage are still known, OFFLINE until the storage rejoins.
        #expect(daemon.stop() == 0)
        #expect(daemon.log.contains("closing connection from 127.0.0.1"))
        #expect(daemon.log.contains("stopped"))
        daemon = try TrackerDaemon(basePath: base)
        let after = try RawClient(port: daemon.port)
        #expect(try GroupStat.decodeList(after.call(.listAllGroups).body).map(\.name) == ["group1"])
        #expect(try Self.statuses(after) == ["127.0.0.1": StorageStatus.offline.rawValue])
        #expect(try after.call(.queryStoreWithoutGroupOne).status == FDFSStatus.ENOENT.rawValue)
        let rejoined = try RawClient(port: daemon.port)
        let join = try rejoined.call(.storageJoin, Self.join())
        #expect(try StorageJoinResponse.decode(join.body).status == StorageStatus.online.rawValue)
        #expect(try rejoined.call(.storageBeat).status == 0)
        #expect(try after.call(.queryStoreWithoutGroupOne).status == 0)
    }

    @Test("a storage whose connection closes is OFFLINE at once")
    func disconnectGoesOffline() throws {
        let base = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let daemon = try TrackerDaemon(basePath: base)
        defer { daemon.stop() }
        let client = try RawClient(port: daemon.port)
        do {
            let storage = try RawClient(port: daemon.port)
            try Self.playStorage(storage)
            #expect(try Self.statuses(client) == ["127.0.0.1": StorageStatus.active.rawValue])
        }
        try waitUntil("the storage to go OFFLINE", seconds: 10) {
            try Self.statuses(client) == ["127.0.0.1": StorageStatus.offline.rawValue]
        }
    }

    @Test("allow_hosts drops other peers right after accept; a bad config exits 1 naming file:line")
    func configHandling() throws {
        let base = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let conf = base + "/tracker.conf"
        try "base_path = \(base)\nallow_hosts = 127.0.0.2\nmystery_key = 1\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let daemon = try TrackerDaemon(basePath: base, extra: [conf])
        defer { daemon.stop() }
        let refused = try RawClient(port: daemon.port)
        try? refused.send(.activeTest)
        try waitUntil("the refused connection to be closed", seconds: 10) { refused.isClosedByPeer() }
        #expect(daemon.log.contains("tracker.conf:3: unknown key 'mystery_key'"))
        #expect(daemon.log.contains("refused connection from 127.0.0.1"))

        try "port = 22122\nstore_lookup = 9\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let bad = try TrackerDaemon(arguments: [conf, "--base-path", base], waitForListening: false)
        #expect(bad.process.wait() == 1)
        #expect(bad.log.contains("tracker.conf:2: store_lookup = '9'"))
    }

    @Test("max_connections: the connection over the limit is closed, a freed slot is usable again")
    func maxConnections() throws {
        let base = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let conf = base + "/tracker.conf"
        try "max_connections = 2\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let daemon = try TrackerDaemon(basePath: base, extra: [conf])
        defer { daemon.stop() }
        let first = try RawClient(port: daemon.port)
        var second: RawClient? = try RawClient(port: daemon.port)
        #expect(try first.call(.activeTest).status == 0)
        #expect(try second!.call(.activeTest).status == 0)
        let third = try RawClient(port: daemon.port)
        try waitUntil("the third connection to be closed", seconds: 10) { third.isClosedByPeer() }
        second = nil
        try waitUntil("a slot to be usable again", seconds: 10) {
            guard let again = try? RawClient(port: daemon.port), let reply = try? again.call(.activeTest) else { return false }
            return reply.status == 0
        }
        #expect(try first.call(.activeTest).status == 0)
    }
}
