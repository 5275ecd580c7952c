import FDFSProtocol
import NIOCore
import FDFSTestSupport
import Testing

/// LIST_ONE_GROUP (90), LIST_ALL_GROUPS (91) and LIST_STORAGE (92) replies. Their annotations
/// carry no field values, so each record is also read at the offsets of reference §2.4/§2.5 by
/// ``RawCursor`` and checked against what the captured cluster is known to look like.
@Suite("Listing vectors")
struct ListingVectorTests {
    static let listingFiles = Vectors.names.filter { $0.hasPrefix("07") || $0.hasPrefix("24") }

    @Test("group stat records (113 bytes) decode field by field and re-encode identically", arguments: listingFiles)
    func groups(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges([90, 91]) {
            let response = try #require(exchange.response)
            #expect(response.status == 0 && response.pkg_len % GroupStat.modernSize == 0)
            let groups = try GroupStat.decodeList(response.body)
            #expect(groups.count == response.pkg_len / 113)
            if exchange.request.cmd == 90 {
                #expect(groups.map(\.name) == [exchange.request.parsed.string("group")])
            } else {
                #expect(groups.map(\.name) == ["group1", "group2"], "91 lists every group sorted by name")
            }
            var raw = RawCursor(response.bodyBytes)
            var reencoded = ByteBuffer()
            for group in groups {
                #expect(raw.text(17) == group.name)
                let fields = (0..<12).map { _ in raw.int64() }
                #expect(fields == [group.totalMB, group.freeMB, group.reservedMB, group.trunkFreeMB, group.storageCount,
                                   group.storagePort, group.readableCount, group.writableCount, group.currentWriteServer,
                                   group.storePathCount, group.subdirCountPerPath, group.currentTrunkFileID])
                // What the cluster looks like: group1 has two ACTIVE storages on 23000, group2 one on 23002.
                let members = Vectors.cluster.filter { $0.value.group == group.name && $0.key != "127.0.0.5" }
                #expect(group.storageCount == Int64(members.count))
                #expect(group.readableCount == group.storageCount && group.writableCount == group.storageCount)
                #expect(group.storagePort == Int64(members.first!.value.port))
                #expect(group.storePathCount == 1 && group.subdirCountPerPath == 256)
                #expect(group.currentTrunkFileID == -1, "trunks are disabled")
                #expect(group.freeMB <= group.totalMB && group.reservedMB > 0)
                #expect(group.storageHTTPPort == 0 && group.activeCount == 0, "classic-only fields stay zero")
                group.encode(into: &reencoded, classic: false)
            }
            #expect(raw.isAtEnd)
            #expect(reencoded.bytes == response.bodyBytes)
        }
    }

    @Test("storage stat records (487 / 517 bytes) decode field by field and re-encode identically", arguments: listingFiles)
    func storages(name: String) throws {
        let file = try Vectors.load(name)
        let ipWidth = file.profile.ipFieldWidth
        let recordSize = file.ipv6Sized ? StorageStat.modernIPv6Size : StorageStat.modernIPv4Size
        for exchange in file.exchanges([92]) {
            let response = try #require(exchange.response)
            #expect(response.status == 0 && response.pkg_len % recordSize == 0, "\(name): \(response.label)")
            let group = try #require(exchange.request.parsed.string("group"))
            let wantedID = try #require(exchange.request.parsed.string("storage_id"))
            let storages = try StorageStat.decodeList(response.body)
            #expect(storages.count == response.pkg_len / recordSize)
            if wantedID.isEmpty {
                let members = Vectors.cluster.filter { $0.value.group == group && $0.key != "127.0.0.5" }.keys.sorted()
                #expect(storages.map(\.id) == members, "sorted by id")
            } else {
                #expect(storages.map(\.id) == [wantedID])
            }
            var raw = RawCursor(response.bodyBytes)
            var reencoded = ByteBuffer()
            for storage in storages {
                #expect(raw.byte() == storage.status)
                #expect(raw.byte() == storage.rwMode)
                #expect(raw.text(16) == storage.id)
                #expect(raw.text(ipWidth) == storage.ip)
                #expect(raw.text(16) == storage.sourceID)
                #expect(raw.text(8) == storage.version)
                let fields = (0..<10).map { _ in raw.int64() }
                #expect(fields == [storage.joinTime, storage.upTime, storage.totalMB, storage.freeMB, storage.reservedMB,
                                   storage.uploadPriority, storage.storePathCount, storage.subdirCountPerPath,
                                   storage.currentWritePath, storage.storagePort])
                #expect(raw.int32() == storage.counters.connectionAllocCount)
                #expect(raw.int32() == storage.counters.connectionCurrentCount)
                #expect(raw.int32() == storage.counters.connectionMaxCount)
                #expect((0..<38).map { _ in raw.int64() } == storage.counters.pairs)
                #expect([raw.int64(), raw.int64(), raw.int64(), raw.int64()] == [
                    storage.counters.lastSourceUpdate, storage.counters.lastSyncUpdate,
                    storage.counters.lastSyncedTimestamp, storage.counters.lastHeartBeatTime,
                ])
                #expect(raw.byte() == (storage.isTrunkServer ? 1 : 0))

                // Facts about the captured cluster.
                #expect(storage.ip == storage.id, "no storage ids in use: the id is the IP")
                #expect(storage.version == "6.16.1")
                #expect(storage.rwMode == 6, "read and write")
                #expect(storage.storagePort == Int64(Vectors.cluster[storage.ip]?.port ?? -1))
                #expect(storage.counters.success("upload") <= storage.counters.total("upload"))
                if name.hasPrefix("24") {
                    // 127.0.0.5 was stopped before the first listing and DELETED by the 93 in between.
                    let deleted = response.t > 0.001
                    #expect(storage.storageStatus == (deleted ? .deleted : .offline), "\(name) t=\(response.t)")
                    if deleted {
                        // Observed: a DELETED record keeps only its id, join time and port.
                        #expect(storage.totalMB == 0 && storage.storePathCount == 0 && storage.uploadPriority == 0)
                    }
                } else {
                    #expect(storage.storageStatus == .active)
                    #expect(storage.joinTime > 1_700_000_000 && storage.upTime >= storage.joinTime)
                    #expect(storage.storePathCount == 1 && storage.subdirCountPerPath == 256 && storage.uploadPriority == 10)
                }
                storage.encode(into: &reencoded, profile: file.profile)
            }
            #expect(raw.isAtEnd)
            #expect(reencoded.bytes == response.bodyBytes)
        }
    }
}
