import FDFSProtocol
@testable import FDFSTracker
import NIOCore
import Testing

/// The storage status machine (reference §5.2), heartbeat timeout and connection loss.
@Suite("Status machine")
struct StatusMachineTests {
    func status(_ service: TrackerService, _ id: String, group: String = "group1") -> StorageStatus? {
        service.registry.groups[group]?.storages[id]?.status
    }

    @Test("INIT → ONLINE → ACTIVE → OFFLINE on disconnect → ONLINE on rejoin")
    func lifecycle() throws {
        let (service, _) = makeService()
        var storage = Peer(service, ip: "127.0.0.2")
        let joined = storage.send(.storageJoin, Peer.join(initFlag: true))
        #expect(try StorageJoinResponse.decode(joined.body) == StorageJoinResponse(status: StorageStatus.initial.rawValue))
        let early = try TrackerBeatResponse.decode(storage.send(.storageBeat).body)
        #expect(status(service, "127.0.0.2") == .initial)  // a beat does not activate INIT
        #expect(early.leader == StorageBrief(status: 0, port: 22122, id: "127.0.0.10", ip: "127.0.0.10"))
        #expect(early.members == [StorageBrief(status: 0, port: 23000, id: "127.0.0.2", ip: "127.0.0.2")])
        #expect(storage.send(.storageSyncDestRequest).body.readableBytes == 0)  // alone in the group
        #expect(status(service, "127.0.0.2") == .online)
        let beat = try TrackerBeatResponse.decode(storage.send(.storageBeat).body)
        #expect(beat.leader == nil)  // once per connection
        #expect(beat.members == [StorageBrief(status: 7, port: 23000, id: "127.0.0.2", ip: "127.0.0.2")])
        #expect(status(service, "127.0.0.2") == .active)
        #expect(try TrackerBeatResponse.decode(storage.send(.storageBeat).body) == TrackerBeatResponse())
        storage.close()
        #expect(status(service, "127.0.0.2") == .offline)

        var again = Peer(service, ip: "127.0.0.2")
        #expect(try StorageJoinResponse.decode(again.send(.storageJoin, Peer.join()).body).status == StorageStatus.online.rawValue)
        let first = try TrackerBeatResponse.decode(again.send(.storageReportDiskUsage, Peer.usage([(10, 5)])).body)
        #expect(first.leader != nil && first.members?.first?.status == 7)
    }

    @Test("a new member waits for its sync source, which moves it on with REPORT_STATUS")
    func newMemberSync() throws {
        let (service, clock) = makeService()
        var old = Peer(service, ip: "127.0.0.2")
        old.joinActive()
        var new = Peer(service, ip: "127.0.0.5")
        new.send(.storageJoin, Peer.join(initFlag: true))
        let source = try StorageSyncSource.decodeOptional(new.send(.storageSyncDestRequest).body)
        #expect(source == StorageSyncSource(sourceID: "127.0.0.2", untilTimestamp: clock.now))
        #expect(status(service, "127.0.0.5") == .waitSync)
        // The existing member learns about the newcomer from its next beat reply.
        let pushed = try TrackerBeatResponse.decode(old.send(.storageBeat).body)
        #expect(pushed.members?.map(\.id) == ["127.0.0.2", "127.0.0.5"])
        #expect(pushed.members?.last?.status == StorageStatus.waitSync.rawValue)
        // ... and asks who syncs the newcomer: itself, so it replays everything.
        let asked = StorageSyncSourceRequest(group: "group1", destinationID: "127.0.0.5")
        #expect(try StorageSyncSource.decodeOptional(old.send(.storageSyncSourceRequest, asked.encoded()).body)?.sourceID == "127.0.0.2")
        new.send(.storageBeat)
        #expect(status(service, "127.0.0.5") == .waitSync)  // not activated while waiting

        func report(_ status: StorageStatus) -> UInt8 {
            old.send(.storageReportStatus, StorageReportStatusRequest(group: "group1", storage: StorageBrief(status: status.rawValue, port: 23000, id: "127.0.0.5", ip: "127.0.0.5")).encoded()).status
        }
        #expect(report(.syncing) == 0)
        #expect(status(service, "127.0.0.5") == .syncing)
        #expect(report(.waitSync) == 0)
        #expect(status(service, "127.0.0.5") == .syncing)  // statuses only move up
        #expect(report(.offline) == 0)
        #expect(status(service, "127.0.0.5") == .offline)
        new.send(.storageBeat)
        #expect(status(service, "127.0.0.5") == .active)
        #expect(report(.waitSync) == 0)
        #expect(status(service, "127.0.0.5") == .active)  // ACTIVE is not overridden
        // SYNC_DEST_QUERY tells the newcomer its source; SYNC_NOTIFY with it changes nothing.
        #expect(try StorageSyncSource.decodeOptional(new.send(.storageSyncDestQuery).body)?.sourceID == "127.0.0.2")
        #expect(new.send(.storageSyncNotify, source!.encoded()).status == 0)
    }

    @Test("a source's report that arrives before the newcomer's SYNC_NOTIFY still counts (several trackers)")
    func reportBeforeNotify() throws {
        let (service, _) = makeService()
        var source = Peer(service, ip: "127.0.0.3")
        source.joinActive()
        var newcomer = Peer(service, ip: "127.0.0.2")
        newcomer.send(.storageJoin, Peer.join(initFlag: true))
        #expect(status(service, "127.0.0.2") == .initial)
        // The newcomer asked another tracker for its source; the source already finished.
        for reported in [StorageStatus.syncing, .offline] {
            let brief = StorageBrief(status: reported.rawValue, port: 23000, id: "127.0.0.2", ip: "127.0.0.2")
            #expect(source.send(.storageReportStatus, StorageReportStatusRequest(group: "group1", storage: brief).encoded()).status == 0)
        }
        #expect(status(service, "127.0.0.2") == .offline)
        #expect(newcomer.send(.storageSyncNotify, StorageSyncSource(sourceID: "127.0.0.3", untilTimestamp: 5).encoded()).status == 0)
        #expect(status(service, "127.0.0.2") == .offline)
        newcomer.send(.storageBeat)
        #expect(status(service, "127.0.0.2") == .active)
    }

    @Test("SYNC_NOTIFY: empty source → ONLINE; unknown source → ENOENT")
    func syncNotify() throws {
        let (service, _) = makeService()
        var storage = Peer(service, ip: "127.0.0.2")
        storage.send(.storageJoin, Peer.join(initFlag: true))
        let unknown = StorageSyncSource(sourceID: "127.0.0.9", untilTimestamp: 5)
        #expect(storage.send(.storageSyncNotify, unknown.encoded()).status == FDFSStatus.ENOENT.rawValue)
        #expect(status(service, "127.0.0.2") == .waitSync)
        #expect(storage.send(.storageSyncNotify, StorageSyncSource.none.encoded()).status == 0)
        #expect(status(service, "127.0.0.2") == .online)
    }

    @Test("CHANGE_STATUS aligns with the leader; ONLINE/ACTIVE are stored as OFFLINE")
    func changeStatus() throws {
        let (service, _) = makeService()
        var storage = Peer(service, ip: "127.0.0.2")
        storage.send(.storageJoin, Peer.join(initFlag: true))
        #expect(storage.send(.storageChangeStatus, StorageChangeStatusRequest(status: 7).encoded()).status == 0)
        #expect(status(service, "127.0.0.2") == .offline)
        #expect(storage.send(.storageChangeStatus, StorageChangeStatusRequest(status: 6).encoded()).status == 0)
        #expect(status(service, "127.0.0.2") == .offline)  // between available statuses: ignored
        #expect(storage.send(.storageChangeStatus, StorageChangeStatusRequest(status: 2).encoded()).status == 0)
        #expect(status(service, "127.0.0.2") == .syncing)
    }

    @Test("an ACTIVE storage without beats goes OFFLINE after check_active_interval")
    func heartbeatTimeout() {
        var settings = capturedClusterSettings()
        settings.checkActiveInterval = 120
        let (service, clock) = makeService(settings)
        var storage = Peer(service, ip: "127.0.0.2")
        storage.joinActive()
        clock.advance(120)
        service.checkAlive()
        #expect(status(service, "127.0.0.2") == .active)
        storage.send(.storageBeat)
        clock.advance(121)
        service.checkAlive()
        #expect(status(service, "127.0.0.2") == .offline)
        var client = Peer(service, ip: "127.0.0.1")
        #expect(client.send(.queryStoreWithoutGroupOne).status == FDFSStatus.ENOENT.rawValue)
        storage.send(.storageBeat)
        #expect(status(service, "127.0.0.2") == .active)
    }

    @Test("closing a stale connection does not take a rejoined storage offline")
    func staleConnection() {
        let (service, _) = makeService()
        var first = Peer(service, ip: "127.0.0.2")
        first.joinActive()
        var second = Peer(service, ip: "127.0.0.2")
        second.send(.storageJoin, Peer.join())
        second.send(.storageBeat)
        first.close()
        #expect(status(service, "127.0.0.2") == .active)
        second.close()
        #expect(status(service, "127.0.0.2") == .offline)
    }

    @Test("JOIN checks: group name, counts, group port and store_path_count")
    func joinChecks() throws {
        let (service, _) = makeService()
        var storage = Peer(service, ip: "127.0.0.2")
        #expect(storage.send(.storageJoin, Peer.join(group: "bad-name")).status == FDFSStatus.EINVAL.rawValue)
        #expect(storage.send(.storageJoin, Peer.join(paths: 0)).status == FDFSStatus.EINVAL.rawValue)
        #expect(storage.send(.storageJoin, Peer.join(port: 0)).status == FDFSStatus.EINVAL.rawValue)
        // Unknown storage that claims to be deleted: EFAULT.
        #expect(storage.send(.storageJoin, Peer.join(status: 4)).status == 14)
        storage.joinActive(usage: [(10, 5), (10, 5)])
        var other = Peer(service, ip: "127.0.0.3")
        #expect(other.send(.storageJoin, Peer.join(port: 23001, paths: 2)).status == FDFSStatus.EINVAL.rawValue)
        #expect(other.send(.storageJoin, Peer.join(paths: 1)).status == FDFSStatus.EINVAL.rawValue)
        #expect(other.send(.storageJoin, Peer.join(paths: 2)).status == 0)
        // A storage that was ACTIVE elsewhere joins as ONLINE.
        var third = Peer(service, ip: "127.0.0.4")
        #expect(try StorageJoinResponse.decode(third.send(.storageJoin, Peer.join(status: 7, paths: 2)).body).status == StorageStatus.online.rawValue)
    }

    @Test("storage-only commands need a JOIN first; bad lengths get EINVAL")
    func accessAndLengths() {
        let (service, _) = makeService()
        var peer = Peer(service, ip: "127.0.0.2")
        for command in [FDFSCommand.storageBeat, .storageReportDiskUsage, .storageSyncReport, .storageSyncDestRequest, .storageSyncNotify, .storageSyncDestQuery, .storageChangeStatus, .storageReplicaChange] {
            #expect(peer.send(command).status == FDFSStatus.EACCES.rawValue, "\(command)")
        }
        peer.joinActive()
        #expect(peer.send(.storageBeat, ByteBuffer(bytes: [1, 2, 3])).status == FDFSStatus.EINVAL.rawValue)
        #expect(peer.send(.storageReportDiskUsage, Peer.usage([(1, 1), (1, 1)])).status == FDFSStatus.EINVAL.rawValue)
        #expect(peer.send(.activeTest).status == 0)
        #expect(peer.send(.activeTest, ByteBuffer(bytes: [0])).status == FDFSStatus.EINVAL.rawValue)
        #expect(peer.send(FDFSCommand(rawValue: 250)).status == FDFSStatus.EINVAL.rawValue)
        #expect(peer.send(.queryStoreWithoutGroupOne, ByteBuffer(bytes: [0])).status == FDFSStatus.EINVAL.rawValue)
        #expect(peer.send(.storageGetGroupName).status == FDFSStatus.EOPNOTSUPP.rawValue)
        #expect(service.handle(FDFSHeader(bodyLength: 0, command: .quit), body: ByteBuffer(), connection: &peer.connection) == .close)
    }

    @Test("GET_MY_IP, GET_SERVER_ID, GET_STATUS, CHANGELOG_REQ, GET_LEADER")
    func helpers() throws {
        let (service, _) = makeService()
        var storage = Peer(service, ip: "127.0.0.2")
        storage.joinActive()
        var fresh = Peer(service, ip: "127.0.0.3")
        var myIP = fresh.send(.storageGetMyIP, StorageGetMyIPRequest(group: "group1", port: 23000).encoded()).body
        #expect(myIP.readRemainingString() == "127.0.0.3")
        let address = StorageAddressRequest(group: "group1", ip: "127.0.0.2", port: 23000)
        var id = fresh.send(.storageGetServerID, address.encoded()).body
        #expect(id.readRemainingString() == "127.0.0.2")
        #expect(try StorageBrief.decode(fresh.send(.storageGetStatus, address.encoded()).body) == StorageBrief(status: 7, port: 23000, id: "127.0.0.2", ip: "127.0.0.2"))
        #expect(fresh.send(.storageGetStatus, StorageAddressRequest(group: "group1", ip: "127.0.0.9", port: 23000).encoded()).status == FDFSStatus.ENOENT.rawValue)
        #expect(fresh.send(.storageChangelogRequest, StorageChangelogRequest(group: "group1", storageID: "127.0.0.2").encoded()).status == 0)
        #expect(fresh.send(.storageChangelogRequest, StorageChangelogRequest(group: "group1", storageID: "127.0.0.9").encoded()).status == FDFSStatus.ENOENT.rawValue)
        #expect(storage.send(.storageChangelogRequest).status == 0)
        var leader = fresh.send(FDFSCommand(rawValue: 95)).body
        #expect(leader.readRemainingString() == "127.0.0.10:22122")
    }
}
