import FDFSProtocol
@testable import FDFSTracker
import NIOCore
import Testing

/// Replays the storage side of captured FastDFS 6.16.1 sessions against our tracker and expects
/// the real tracker's replies byte for byte.
@Suite("Capture replay")
struct CaptureReplayTests {
    /// Frames that went to the tracker's storage-facing port.
    func trackerExchanges(_ name: String) throws -> [Exchange] {
        try Vectors.exchanges(name).filter { $0.request.dstPort == 22122 }
    }

    @Test("a group2 storage restarts (20_storage_join_beat)")
    func storageRestart() throws {
        let (service, _) = makeService()
        // Before the capture the storage was known and went OFFLINE when it stopped.
        var before = Peer(service, ip: "127.0.0.4")
        before.joinActive(group: "group2", port: 23002)
        before.close()
        #expect(service.registry.groups["group2"]?.storages["127.0.0.4"]?.status == .offline)

        var peers: [Int: Peer] = [:]
        var compared = 0
        for exchange in try trackerExchanges("20_storage_join_beat") {
            let request = exchange.request
            var peer = peers[request.conn] ?? Peer(service, ip: request.srcIP)
            let reply = peer.replay(request)
            peers[request.conn] = peer
            if let response = exchange.response {
                #expect(reply == response.bytes, "\(request.label)")
                compared += 1
            } else {
                #expect(reply == nil, "QUIT closes: \(request.label)")
            }
        }
        #expect(compared == 18)
    }

    @Test("a new group1 member gets a source and catches up (23_new_storage_full_sync)")
    func newMemberFullSync() throws {
        let (service, clock) = makeService()
        // History: 127.0.0.3 started alone; 127.0.0.2 joined later and copied from it.
        clock.now = 0x6b01_71b0
        var three = Peer(service, ip: "127.0.0.3")
        #expect(three.send(.storageJoin, Peer.join(initFlag: true)).status == 0)
        #expect(three.send(.storageSyncDestRequest).body.readableBytes == 0)
        three.send(.storageBeat)
        three.send(.storageReportDiskUsage, Peer.usage([(0x3efe3, 0x13719)]))
        clock.now = 0x6b01_71b3
        var two = Peer(service, ip: "127.0.0.2")
        #expect(two.send(.storageJoin, Peer.join(initFlag: true)).status == 0)
        let assigned = try StorageSyncSource.decodeOptional(two.send(.storageSyncDestRequest).body)
        #expect(assigned == StorageSyncSource(sourceID: "127.0.0.3", untilTimestamp: 0x6b01_71b3))
        for status in [StorageStatus.syncing, .offline] {
            let report = StorageReportStatusRequest(group: "group1", storage: StorageBrief(status: status.rawValue, port: 23000, id: "127.0.0.2", ip: "127.0.0.2"))
            #expect(three.send(.storageReportStatus, report.encoded()).status == 0)
        }
        two.send(.storageBeat)
        two.send(.storageReportDiskUsage, Peer.usage([(0x3efe3, 0x13719)]))
        #expect(service.registry.groups["group1"]?.writable.map(\.id) == ["127.0.0.2", "127.0.0.3"])

        clock.now = 0x6b01_73e4
        var peers: [Int: Peer] = [:]
        var compared = 0
        for exchange in try trackerExchanges("23_new_storage_full_sync") {
            let request = exchange.request
            if request.cmd == Int(FDFSCommand.storageSyncReport.rawValue) {
                // Meanwhile (not in the capture) the source reported the newcomer SYNCING, then
                // OFFLINE when the full replay ended.
                for status in [StorageStatus.syncing, .offline] {
                    let report = StorageReportStatusRequest(group: "group1", storage: StorageBrief(status: status.rawValue, port: 23000, id: "127.0.0.5", ip: "127.0.0.5"))
                    #expect(two.send(.storageReportStatus, report.encoded()).status == 0)
                }
            }
            var peer = peers[request.conn] ?? Peer(service, ip: request.srcIP)
            let reply = peer.replay(request)
            peers[request.conn] = peer
            if let response = exchange.response {
                #expect(reply == response.bytes, "\(request.label)")
                compared += 1
            }
        }
        #expect(compared >= 15)
        let newcomer = service.registry.groups["group1"]?.storages["127.0.0.5"]
        #expect(newcomer?.status == .active)
        #expect(newcomer?.syncSourceID == "127.0.0.2")
        #expect(newcomer?.lastSyncedTimestamp == 0x6b01_7362)
    }

    @Test("deleting an OFFLINE storage twice (24_delete_storage)")
    func deleteStorageTwice() throws {
        let (service, clock) = makeService()
        var two = Peer(service, ip: "127.0.0.2")
        two.joinActive()
        clock.advance(10)
        var five = Peer(service, ip: "127.0.0.5")
        #expect(five.send(.storageJoin, Peer.join(initFlag: true)).status == 0)
        #expect(try StorageSyncSource.decodeOptional(five.send(.storageSyncDestRequest).body)?.sourceID == "127.0.0.2")
        let offline = StorageReportStatusRequest(group: "group1", storage: StorageBrief(status: StorageStatus.offline.rawValue, port: 23000, id: "127.0.0.5", ip: "127.0.0.5"))
        two.send(.storageReportStatus, offline.encoded())
        five.send(.storageBeat)
        five.close()
        #expect(service.registry.groups["group1"]?.storages["127.0.0.5"]?.status == .offline)

        var admin = Peer(service, ip: "127.0.0.1", trackerIP: "127.0.0.1")
        for exchange in try trackerExchanges("24_delete_storage") {
            guard let response = exchange.response else { continue }
            let reply = admin.replay(exchange.request)
            if exchange.request.cmd == Int(FDFSCommand.deleteStorage.rawValue) {
                #expect(reply == response.bytes, "\(exchange.request.label)")
            } else {
                // LIST_STORAGE: same record size; status, rw_mode, id, ip, src_id and version
                // (the first 58 bytes of the body) equal; counters and times differ.
                #expect(reply?.count == response.bytes.count)
                #expect(reply.map { Array($0.prefix(10 + 58)) } == Array(response.bytes.prefix(10 + 58)), "\(exchange.request.label)")
            }
        }
    }
}
