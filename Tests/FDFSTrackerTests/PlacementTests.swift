import FDFSProtocol
@testable import FDFSTracker
import NIOCore
import Testing

/// Upload placement: store_lookup, store_group, store_server, store_path, reserved space.
@Suite("Placement")
struct PlacementTests {
    func store(_ peer: inout Peer, group: String? = nil) throws -> StoreTarget? {
        let reply = group.map { peer.send(.queryStoreWithGroupOne, GroupNameRequest(group: $0).encoded()) } ?? peer.send(.queryStoreWithoutGroupOne)
        guard reply.status == 0 else { return nil }
        return try StoreTarget.decode(reply.body)
    }

    func status(_ peer: inout Peer, group: String? = nil) -> UInt8 {
        (group.map { peer.send(.queryStoreWithGroupOne, GroupNameRequest(group: $0).encoded()) } ?? peer.send(.queryStoreWithoutGroupOne)).status
    }

    @Test("store_lookup 0 cycles over the groups in name order")
    func roundRobinGroups() throws {
        var settings = capturedClusterSettings()
        settings.storeLookup = .roundRobin
        let (service, _) = makeService(settings)
        var a = Peer(service, ip: "127.0.0.2"); a.joinActive(group: "group1")
        var b = Peer(service, ip: "127.0.0.4"); b.joinActive(group: "group2", port: 23002)
        var client = Peer(service, ip: "127.0.0.1")
        let groups = try (0..<4).map { _ in try store(&client)?.group }
        #expect(groups == ["group1", "group2", "group1", "group2"])
        let target = try store(&client, group: "group2")
        #expect(target == StoreTarget(group: "group2", storage: StorageEndpoint(ip: "127.0.0.4", port: 23002), storePathIndex: 0))
        #expect(status(&client, group: "nosuchgroup") == FDFSStatus.ENOENT.rawValue)
    }

    @Test("store_lookup 1 always uses store_group")
    func specifiedGroup() throws {
        var settings = capturedClusterSettings()
        settings.storeLookup = .specifiedGroup
        settings.storeGroup = "group2"
        let (service, _) = makeService(settings)
        var client = Peer(service, ip: "127.0.0.1")
        #expect(status(&client) == FDFSStatus.ENOENT.rawValue)  // no groups at all
        var a = Peer(service, ip: "127.0.0.2"); a.joinActive(group: "group1")
        #expect(status(&client) == FDFSStatus.ENOENT.rawValue)  // group2 does not exist
        var b = Peer(service, ip: "127.0.0.4"); b.joinActive(group: "group2", port: 23002)
        #expect(try (0..<3).map { _ in try store(&client)?.group } == ["group2", "group2", "group2"])
        b.close()
        #expect(status(&client) == FDFSStatus.ENOENT.rawValue)  // group2 has no writable storage
    }

    @Test("store_lookup 2 follows the group with the most free space")
    func loadBalanceGroups() throws {
        var settings = capturedClusterSettings()
        settings.storeLookup = .loadBalance
        let (service, _) = makeService(settings)
        var a = Peer(service, ip: "127.0.0.2"); a.joinActive(group: "group1", usage: [(1000, 100)])
        var b = Peer(service, ip: "127.0.0.4"); b.joinActive(group: "group2", port: 23002, usage: [(1000, 500)])
        var client = Peer(service, ip: "127.0.0.1")
        #expect(try (0..<3).map { _ in try store(&client)?.group } == ["group2", "group2", "group2"])
        a.send(.storageReportDiskUsage, Peer.usage([(1000, 900)]))
        #expect(try store(&client)?.group == "group1")
    }

    @Test("store_server 0 / 1 / 2 choose the storage inside the group")
    func storeServerPolicies() throws {
        for policy in [StoreServerPolicy.roundRobin, .firstByIP, .firstByPriority] {
            var settings = capturedClusterSettings()
            settings.storeServer = policy
            let (service, _) = makeService(settings)
            var x = Peer(service, ip: "127.0.0.2"); x.joinActive(priority: 10)
            var y = Peer(service, ip: "127.0.0.3"); y.joinActive(priority: 5)
            var client = Peer(service, ip: "127.0.0.1")
            let ips = try (0..<4).map { _ in try store(&client)?.storage.ip }
            switch policy {
            case .roundRobin: #expect(ips == ["127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"])
            case .firstByIP: #expect(ips == Array(repeating: "127.0.0.2", count: 4))
            case .firstByPriority: #expect(ips == Array(repeating: "127.0.0.3", count: 4))
            }
            let all = try StoreTargets.decode(client.send(.queryStoreWithoutGroupAll).body)
            #expect(all.storages.map(\.ip) == ["127.0.0.2", "127.0.0.3"])
        }
    }

    @Test("store_path 0 cycles the paths; store_path 2 points at the freest one")
    func storePathPolicies() throws {
        var settings = capturedClusterSettings()
        settings.storePath = .roundRobin
        var (service, _) = makeService(settings)
        var storage = Peer(service, ip: "127.0.0.2")
        storage.joinActive(usage: [(1000, 500), (1000, 600), (1000, 700)])
        var client = Peer(service, ip: "127.0.0.1")
        #expect(try (0..<4).map { _ in try store(&client)?.storePathIndex } == [0, 1, 2, 0])

        settings.storePath = .loadBalance
        (service, _) = makeService(settings)
        storage = Peer(service, ip: "127.0.0.2")
        storage.joinActive(usage: [(1000, 500), (1000, 700), (1000, 600)])
        client = Peer(service, ip: "127.0.0.1")
        #expect(try (0..<3).map { _ in try store(&client)?.storePathIndex } == [1, 1, 1])
        storage.send(.storageReportDiskUsage, Peer.usage([(1000, 900), (1000, 700), (1000, 600)]))
        #expect(try store(&client)?.storePathIndex == 0)
    }

    @Test("reserved space: a full group gets ENOSPC, a full path is skipped")
    func reservedSpace() throws {
        var settings = capturedClusterSettings()
        settings.reservedSpace = .ratio(0.10)
        var (service, _) = makeService(settings)
        var storage = Peer(service, ip: "127.0.0.2")
        storage.joinActive(usage: [(1000, 50), (1000, 40)])
        var client = Peer(service, ip: "127.0.0.1")
        #expect(status(&client) == FDFSStatus.ENOSPC.rawValue)
        #expect(status(&client, group: "group1") == FDFSStatus.ENOSPC.rawValue)
        storage.send(.storageReportDiskUsage, Peer.usage([(1000, 50), (1000, 900)]))
        #expect(try (0..<3).map { _ in try store(&client)?.storePathIndex } == [1, 1, 1])

        settings.reservedSpace = .megabytes(1000)
        (service, _) = makeService(settings)
        storage = Peer(service, ip: "127.0.0.2")
        storage.joinActive(usage: [(5000, 400), (5000, 500)])
        client = Peer(service, ip: "127.0.0.1")
        #expect(status(&client) == FDFSStatus.ENOSPC.rawValue)  // 900 MB free in all
        storage.send(.storageReportDiskUsage, Peer.usage([(5000, 400), (5000, 800)]))
        // 1200 MB > 1000 for the storage; per path the reserve is 500: only path 1 has room.
        #expect(try (0..<2).map { _ in try store(&client)?.storePathIndex } == [1, 1])
    }

    @Test("reserved_storage_space parsing and its PARAMETER_REQ text")
    func reservedParsing() {
        #expect(ReservedSpace.parse("20%") == .ratio(0.2))
        #expect(ReservedSpace.parse("1G") == .megabytes(1024))
        #expect(ReservedSpace.parse("512MB") == .megabytes(512))
        #expect(ReservedSpace.parse("0%") == nil)
        #expect(ReservedSpace.parse("abc") == nil)
        #expect(ReservedSpace.ratio(0.01).description == "1.00%")
        #expect(ReservedSpace.ratio(0.2).description == "20.00%")
        #expect(ReservedSpace.megabytes(1024).description == "1024MB")
        #expect(ReservedSpace.ratio(0.1).allows(freeMB: 11, totalMB: 100))
        #expect(!ReservedSpace.ratio(0.1).allows(freeMB: 10, totalMB: 100))
        #expect(!ReservedSpace.ratio(0.1).allows(freeMB: 10, totalMB: 0))
    }
}
