import FDFSProtocol
import NIOCore
import Testing

/// The storage ↔ tracker codecs against frames captured from FastDFS 6.16.1: every request and
/// reply body decodes and encodes back to the same bytes.
@Suite("Storage-tracker codecs")
struct StorageTrackerCodecTests {
    static let scenarios = ["20_storage_join_beat", "20_storage_join_beat_ipv6resp", "21_group1_storage_rejoin", "23_new_storage_full_sync", "24_delete_storage"]

    /// Decodes `body` with `decode`, encodes it again and checks that the bytes are unchanged.
    func roundTrip<T>(_ body: ByteBuffer, _ label: String, decode: (ByteBuffer) throws -> T, encode: (T) -> ByteBuffer) throws -> T {
        let value = try decode(body)
        #expect(encode(value).bytes == body.bytes, "\(label)")
        return value
    }

    @Test("requests round-trip", arguments: scenarios)
    func requests(scenario: String) throws {
        var seen = Set<Int>()
        for exchange in try Vectors.exchanges(scenario) {
            let frame = exchange.request
            let body = frame.body
            seen.insert(frame.cmd)
            switch UInt8(frame.cmd) {
            case FDFSCommand.storageJoin.rawValue:
                let join = try roundTrip(body, frame.label, decode: StorageJoinRequest.decode) { $0.encoded() }
                #expect(body.readableBytes == StorageJoinRequest.fixedSize + join.trackers.joined().utf8.count + join.trackers.count)
                #expect(join.version == "6.16.1")
                #expect(join.currentTrackerIP == frame.dstIP)
                #expect(join.trackers == ["127.0.0.10:22122"])
                #expect(join.storagePort == (frame.srcIP == "127.0.0.4" ? 23002 : 23000))
            case FDFSCommand.storageBeat.rawValue:
                let beat = try roundTrip(body, frame.label, decode: StorageBeatRequest.decode) { $0.encoded() }
                #expect((beat.counters == nil) == (body.readableBytes == 0))
            case FDFSCommand.storageReportDiskUsage.rawValue:
                let usage = try roundTrip(body, frame.label, decode: StorageDiskUsageReport.decode) { $0.encoded() }
                #expect(usage.paths.count == 1)
                #expect(usage.paths[0].totalMB == 0x3efe3)
            case FDFSCommand.storageSyncReport.rawValue:
                let report = try roundTrip(body, frame.label, decode: StorageSyncReport.decode) { $0.encoded() }
                #expect(report.entries.map(\.sourceID) == ["127.0.0.2", "127.0.0.3", "127.0.0.5"])
                #expect(report.entries[0].timestamp == 0x6b01_7362)
            case FDFSCommand.storageSyncNotify.rawValue:
                _ = try roundTrip(body, frame.label, decode: StorageSyncSource.decode) { $0.encoded() }
            case FDFSCommand.storageSyncSourceRequest.rawValue:
                let request = try roundTrip(body, frame.label, decode: StorageSyncSourceRequest.decode) { $0.encoded() }
                #expect(request.group == "group1")
            case FDFSCommand.storageReplicaChange.rawValue:
                let change = try roundTrip(body, frame.label, decode: StorageReplicaChangeRequest.decode) { $0.encoded() }
                #expect(change.storages == [StorageBrief(status: 1, port: 23000, id: "127.0.0.5", ip: "127.0.0.5")])
            case FDFSCommand.storageGetMyIP.rawValue:
                let request = try roundTrip(body, frame.label, decode: StorageGetMyIPRequest.decode) { $0.encoded() }
                #expect(request.port == (request.group == "group2" ? 23002 : 23000))
            case FDFSCommand.storageChangelogRequest.rawValue:
                let request = try roundTrip(body, frame.label, decode: StorageChangelogRequest.decode) { $0.encoded() }
                #expect(request.storageID == (body.readableBytes == 0 ? nil : frame.srcIP))
            case FDFSCommand.deleteStorage.rawValue:
                let request = try roundTrip(body, frame.label, decode: DeleteStorageRequest.decode) { $0.encoded() }
                #expect(request == DeleteStorageRequest(group: "group1", storageID: "127.0.0.5"))
            case FDFSCommand.storageParameterRequest.rawValue, FDFSCommand.storageSyncDestRequest.rawValue, FDFSCommand.quit.rawValue:
                #expect(body.readableBytes == 0)
            default:
                break
            }
        }
        #expect(seen.contains(Int(FDFSCommand.storageJoin.rawValue)) || scenario == "24_delete_storage")
    }

    @Test("replies round-trip", arguments: scenarios)
    func replies(scenario: String) throws {
        for exchange in try Vectors.exchanges(scenario) {
            guard let response = exchange.response, response.status == 0, !exchange.request.dst.hasSuffix(":23000") else { continue }
            let body = response.body
            let label = response.label
            switch UInt8(exchange.request.cmd) {
            case FDFSCommand.storageJoin.rawValue:
                let reply = try roundTrip(body, label, decode: StorageJoinResponse.decode) { $0.encoded() }
                #expect(reply.status == StorageStatus.online.rawValue || reply.status == StorageStatus.initial.rawValue)
            case FDFSCommand.storageBeat.rawValue, FDFSCommand.storageReportDiskUsage.rawValue, FDFSCommand.storageSyncReport.rawValue:
                let reply = try roundTrip(body, label, decode: TrackerBeatResponse.decode) { $0.encoded() }
                if let leader = reply.leader {
                    #expect(leader == StorageBrief(status: 0, port: 22122, id: "127.0.0.10", ip: "127.0.0.10"))
                }
                #expect(reply.trunkServer == nil)
                if let members = reply.members {
                    #expect(members.map(\.id) == members.map(\.id).sorted())
                    #expect(members.contains { $0.id == exchange.request.srcIP })
                }
            case FDFSCommand.storageSyncDestRequest.rawValue, FDFSCommand.storageSyncSourceRequest.rawValue, FDFSCommand.storageSyncDestQuery.rawValue:
                let source = try roundTrip(body, label, decode: StorageSyncSource.decodeOptional) { StorageSyncSource.encodeOptional($0) }
                if let source { #expect(["127.0.0.2", "127.0.0.3"].contains(source.sourceID)) }
            case FDFSCommand.storageParameterRequest.rawValue:
                let parameters = try roundTrip(body, label, decode: { TrackerParameters.decode($0) }) { $0.encoded() }
                #expect(parameters["reserved_storage_space"] == "1.00%")
                #expect(parameters.entries.count == 26)
            case FDFSCommand.storageGetMyIP.rawValue:
                var copy = body
                #expect(copy.readRemainingString() == exchange.request.srcIP)
            default:
                break
            }
        }
    }

    @Test("the captured member lists carry the statuses of a joining storage")
    func memberListStatuses() throws {
        let replies = try Vectors.exchanges("23_new_storage_full_sync")
            .filter { $0.request.cmd == 83 || $0.request.cmd == 89 }
            .compactMap { $0.response.map { try? TrackerBeatResponse.decode($0.body) } ?? nil }
        let statusesOfNewcomer = replies.compactMap { $0.members?.first { $0.id == "127.0.0.5" }?.status }
        #expect(statusesOfNewcomer == [1, 5, 7])  // WAIT_SYNC, then OFFLINE after the full sync, then ACTIVE
    }

    @Test("hand-built messages round-trip")
    func handBuilt() throws {
        let status = StorageReportStatusRequest(group: "group1", storage: StorageBrief(status: 2, port: 23000, id: "127.0.0.5", ip: "127.0.0.5"))
        #expect(status.encoded().readableBytes == 16 + 67)
        #expect(try StorageReportStatusRequest.decode(status.encoded()) == status)

        let change = StorageChangeStatusRequest(status: 5)
        #expect(try StorageChangeStatusRequest.decode(change.encoded()) == change)

        let address = StorageAddressRequest(group: "group1", ip: "127.0.0.3", port: 23000)
        var text = address.encoded()
        text.moveReaderIndex(forwardBy: 16)
        #expect(text.readRemainingString() == "127.0.0.3:23000")
        #expect(try StorageAddressRequest.decode(address.encoded()) == address)
        let v6 = StorageAddressRequest(group: "g", ip: "::1", port: 23000)
        #expect(try StorageAddressRequest.decode(v6.encoded()) == v6)

        let brief = StorageBrief(status: 7, port: 23000, id: "127.0.0.3", ip: "127.0.0.3")
        #expect(try StorageBrief.decode(brief.encoded()) == brief)
        #expect(StorageBrief.size == 67)

        let deleteGroup = DeleteGroupRequest(group: "group9")
        #expect(try DeleteGroupRequest.decode(deleteGroup.encoded()) == deleteGroup)

        let full = TrackerBeatResponse(leader: brief, trunkServer: .empty, members: [])
        #expect(full.flags == 7)
        #expect(try TrackerBeatResponse.decode(full.encoded()) == full)
        #expect(TrackerBeatResponse().encoded().bytes == [0])

        let join = StorageJoinRequest(group: "group1", storagePort: 23000, joinTime: 1, upTime: 2, currentTrackerIP: "127.0.0.1", trackers: ["127.0.0.1:22122", "127.0.0.2:22122"])
        #expect(StorageJoinRequest.fixedSize == 145)
        #expect(try StorageJoinRequest.decode(join.encoded()) == join)
        #expect(try StorageJoinResponse.decode(ByteBuffer(bytes: [UInt8](repeating: 0, count: 16))).status == 0)
    }

    @Test("malformed bodies are refused")
    func malformed() {
        let noTrackers = StorageJoinRequest(group: "g", storagePort: 1, joinTime: 0, upTime: 0, currentTrackerIP: "", trackers: [])
        #expect(throws: FDFSProtocolError.self) { _ = try StorageJoinRequest.decode(noTrackers.encoded()) }
        var missingLine = StorageJoinRequest(group: "g", storagePort: 1, joinTime: 0, upTime: 0, currentTrackerIP: "", trackers: ["a:1"]).encoded()
        missingLine.moveWriterIndex(to: missingLine.writerIndex - 1)  // drop the final newline
        #expect(throws: FDFSProtocolError.self) { _ = try StorageJoinRequest.decode(missingLine) }
        #expect(throws: FDFSProtocolError.self) { _ = try StorageJoinRequest.decode(ByteBuffer(bytes: [UInt8](repeating: 0, count: 144))) }
        #expect(throws: FDFSProtocolError.self) { _ = try StorageBeatRequest.decode(ByteBuffer(bytes: [1, 2, 3])) }
        #expect(throws: FDFSProtocolError.self) { _ = try StorageDiskUsageReport.decode(ByteBuffer(bytes: [UInt8](repeating: 0, count: 15))) }
        #expect(throws: FDFSProtocolError.self) { _ = try StorageSyncReport.decode(ByteBuffer()) }
        #expect(throws: FDFSProtocolError.self) { _ = try StorageSyncSource.decode(ByteBuffer(bytes: [UInt8](repeating: 0, count: 23))) }
        #expect(throws: FDFSProtocolError.self) { _ = try DeleteStorageRequest.decode(ByteBuffer(bytes: [UInt8](repeating: 0x41, count: 16))) }
        #expect(throws: FDFSProtocolError.self) { _ = try DeleteStorageRequest.decode(ByteBuffer(bytes: [UInt8](repeating: 0x41, count: 32))) }
        #expect(throws: FDFSProtocolError.self) { _ = try StorageAddressRequest.decode(ByteBuffer(string: String(repeating: "g", count: 16) + "noport")) }
        #expect(throws: FDFSProtocolError.self) { _ = try TrackerBeatResponse.decode(ByteBuffer(bytes: [4, 1, 2])) }
    }
}
