import FDFSProtocol
@testable import FDFSTracker
import Foundation
import NIOCore
import Testing

/// DELETE_STORAGE / DELETE_GROUP, listing layouts, and the state file.
@Suite("Administration and persistence")
struct AdminAndPersistenceTests {
    @Test("DELETE_STORAGE: ENOENT, EBUSY, success, EALREADY")
    func deleteStorage() throws {
        let (service, _) = makeService()
        var storage = Peer(service, ip: "127.0.0.2")
        storage.joinActive()
        var admin = Peer(service, ip: "127.0.0.1")
        func delete(_ group: String, _ id: String) -> UInt8 {
            admin.send(.deleteStorage, DeleteStorageRequest(group: group, storageID: id).encoded()).status
        }
        #expect(delete("group9", "127.0.0.2") == FDFSStatus.ENOENT.rawValue)
        #expect(delete("group1", "127.0.0.9") == FDFSStatus.ENOENT.rawValue)
        #expect(delete("group1", "127.0.0.2") == FDFSStatus.EBUSY.rawValue)
        storage.close()
        #expect(delete("group1", "127.0.0.2") == 0)
        #expect(delete("group1", "127.0.0.2") == FDFSStatus.EALREADY.rawValue)
        #expect(service.registry.groups["group1"]?.storages["127.0.0.2"]?.status == .deleted)
        // A deleted storage that comes back starts over as INIT.
        var back = Peer(service, ip: "127.0.0.2")
        #expect(try StorageJoinResponse.decode(back.send(.storageJoin, Peer.join()).body).status == StorageStatus.initial.rawValue)
    }

    @Test("DELETE_GROUP: ENOENT, EBUSY while a storage remains, then success")
    func deleteGroup() {
        let (service, _) = makeService()
        var storage = Peer(service, ip: "127.0.0.2")
        storage.joinActive(group: "group7")
        var admin = Peer(service, ip: "127.0.0.1")
        func delete(_ group: String) -> UInt8 { admin.send(.deleteGroup, DeleteGroupRequest(group: group).encoded()).status }
        #expect(delete("group9") == FDFSStatus.ENOENT.rawValue)
        #expect(delete("group7") == FDFSStatus.EBUSY.rawValue)
        storage.close()
        #expect(admin.send(.deleteStorage, DeleteStorageRequest(group: "group7", storageID: "127.0.0.2").encoded()).status == 0)
        #expect(delete("group7") == 0)
        #expect(service.registry.groups.isEmpty)
        #expect(admin.send(.listAllGroups).body.readableBytes == 0)
    }

    @Test("LIST_* records: 113 / 487 bytes, or 105 / 612 with classic listing")
    func listingLayouts() throws {
        for classic in [false, true] {
            var settings = capturedClusterSettings()
            settings.classicListing = classic
            let (service, _) = makeService(settings)
            var x = Peer(service, ip: "127.0.0.2"); x.joinActive(usage: [(1000, 600)])
            var y = Peer(service, ip: "127.0.0.3"); y.joinActive(usage: [(1000, 400)])
            var z = Peer(service, ip: "127.0.0.4"); z.joinActive(group: "group2", port: 23002)
            var admin = Peer(service, ip: "127.0.0.1")
            let groups = admin.send(.listAllGroups).body
            #expect(groups.readableBytes == 2 * (classic ? 105 : 113))
            let stats = try GroupStat.decodeList(groups)
            #expect(stats.map(\.name) == ["group1", "group2"])
            #expect(stats[0].storageCount == 2)
            #expect(stats[0].freeMB == 400)  // the member with the least free space
            #expect(stats[0].totalMB == 1000)
            #expect(stats[0].storagePort == 23000)
            if classic { #expect(stats[0].activeCount == 2) } else {
                #expect(stats[0].reservedMB == 10)
                #expect(stats[0].readableCount == 2 && stats[0].writableCount == 2)
            }
            let one = admin.send(.listOneGroup, GroupNameRequest(group: "group2").encoded()).body
            #expect(try GroupStat.decodeList(one).map(\.name) == ["group2"])
            #expect(admin.send(.listOneGroup, GroupNameRequest(group: "nope").encoded()).status == FDFSStatus.ENOENT.rawValue)

            let storages = admin.send(.listStorage, ListStorageRequest(group: "group1").encoded()).body
            #expect(storages.readableBytes == 2 * (classic ? 612 : 487))
            let list = try StorageStat.decodeList(storages)
            #expect(list.map(\.id) == ["127.0.0.2", "127.0.0.3"])
            #expect(list.allSatisfy { $0.storageStatus == .active && $0.storagePort == 23000 && $0.version == "6.16.1" })
            let single = admin.send(.listStorage, ListStorageRequest(group: "group1", storageID: "127.0.0.3").encoded()).body
            #expect(try StorageStat.decodeList(single).map(\.freeMB) == [400])
            #expect(admin.send(.listStorage, ListStorageRequest(group: "group1", storageID: "127.0.0.9").encoded()).status == FDFSStatus.ENOENT.rawValue)
        }
    }

    @Test("response_ip_addr_size = IPv6 gives 46-byte IP fields")
    func ipv6SizedReplies() throws {
        var settings = capturedClusterSettings()
        settings.responseIPAddressSize = 46
        let (service, _) = makeService(settings)
        var storage = Peer(service, ip: "127.0.0.2")
        storage.joinActive()
        var client = Peer(service, ip: "127.0.0.1")
        #expect(client.send(.queryStoreWithoutGroupOne).body.readableBytes == 70)
        #expect(client.send(.queryStoreWithoutGroupAll).body.readableBytes == 16 + 53 + 1)
        #expect(client.send(.listStorage, ListStorageRequest(group: "group1").encoded()).body.readableBytes == 517)
        let file = RoutingTests.remoteName(source: "127.0.0.2", timestamp: 1_795_257_000)
        #expect(client.send(.queryFetchOne, FileRequest(group: "group1", remoteFilename: file).encoded()).body.readableBytes == 69)
        #expect(settings.parameters["response_ip_addr_size"] == "46")
    }

    @Test("the state file round-trips; serving storages come back OFFLINE")
    func persistence() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("fdfs-tracker-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let store = RegistryStore(basePath: base)
        let clock = ManualClock(1_795_257_000)
        let service = TrackerService(settings: capturedClusterSettings(), store: store, logger: quietLogger, clock: { clock.now })
        try service.loadState()
        var a = Peer(service, ip: "127.0.0.2"); a.joinActive(usage: [(1000, 500), (1000, 400)])
        var b = Peer(service, ip: "127.0.0.3")
        b.send(.storageJoin, Peer.join(initFlag: true, paths: 2))
        b.send(.storageSyncDestRequest)
        var c = Peer(service, ip: "127.0.0.4"); c.joinActive(group: "group2", port: 23002)
        service.waitForSaves()  // the state is written by the writer queue, after the replies
        #expect(FileManager.default.fileExists(atPath: store.path))
        #expect(!FileManager.default.fileExists(atPath: store.path + ".tmp"))

        let reloaded = TrackerService(settings: capturedClusterSettings(), store: store, logger: quietLogger, clock: { clock.now })
        try reloaded.loadState()
        let registry = reloaded.registry
        #expect(registry.sortedGroupNames == ["group1", "group2"])
        let a2 = try #require(registry.groups["group1"]?.storages["127.0.0.2"])
        #expect(a2.status == .offline)
        #expect(a2.paths == [StorePathUsage(totalMB: 1000, freeMB: 500), StorePathUsage(totalMB: 1000, freeMB: 400)])
        #expect(a2.joinTime == 1_795_256_751 && a2.version == "6.16.1")
        let b2 = try #require(registry.groups["group1"]?.storages["127.0.0.3"])
        #expect(b2.status == .waitSync)
        #expect(b2.syncSourceID == "127.0.0.2" && b2.syncUntilTimestamp == clock.now)
        #expect(registry.groups["group2"]?.storagePort == 23002)
        #expect(registry.groups["group1"]?.storePathCount == 2)
        // The reloaded storage rejoins as ONLINE and is served again after its beat.
        var again = Peer(reloaded, ip: "127.0.0.2")
        #expect(try StorageJoinResponse.decode(again.send(.storageJoin, Peer.join(paths: 2)).body).status == StorageStatus.online.rawValue)
        again.send(.storageBeat)
        var client = Peer(reloaded, ip: "127.0.0.1")
        #expect(try StoreTarget.decode(client.send(.queryStoreWithGroupOne, GroupNameRequest(group: "group1").encoded()).body).storage.ip == "127.0.0.2")
    }

    @Test("an unreadable state file is an error, not a silent reset")
    func corruptState() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("fdfs-tracker-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let store = RegistryStore(basePath: base)
        try store.prepare()
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: store.path))
        let service = TrackerService(settings: TrackerSettings(), store: store, logger: quietLogger)
        #expect(throws: TrackerStoreError.self) { try service.loadState() }
    }
}
