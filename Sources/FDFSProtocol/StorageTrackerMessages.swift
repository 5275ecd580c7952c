import NIOCore

// Codecs for the storage → tracker commands (reference §5), in the layouts of FastDFS ≥ 6.13
// (checked against 6.16.1 captures): 145-byte JOIN fixed part, 67-byte storage briefs.
// Every type encodes and decodes, so both the tracker and the storage server use them.

private let groupWidth = 16
private let storageIDWidth = 16

/// One storage as trackers and storages name each other (`FDFSStorageBrief`): status 1,
/// port int32, id str[16], ip str[46] — 67 bytes since 6.11.
///
/// Used in beat responses (leader, trunk server and group member lists), REPORT_STATUS (76),
/// REPLICA_CHG (85) and the GET_STATUS (71) reply.
public struct StorageBrief: Hashable, Sendable {
    /// Encoded size with the 46-byte IP field of ≥ 6.11 servers.
    public static let size = 1 + 4 + storageIDWidth + WireProfile.briefIPWidth

    /// A ``StorageStatus`` raw value.
    public var status: UInt8
    public var port: Int32
    /// Storage id (the IP text when storage ids are off).
    public var id: String
    public var ip: String

    public init(status: UInt8, port: Int32, id: String, ip: String) {
        self.status = status
        self.port = port
        self.id = id
        self.ip = ip
    }

    /// An all-zero brief (what a tracker sends when, for example, there is no trunk server).
    public static let empty = StorageBrief(status: 0, port: 0, id: "", ip: "")

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(status)
        buffer.writeInteger(port, endianness: .big)
        buffer.writeFixedString(id, width: storageIDWidth)
        buffer.writeFixedString(ip, width: WireProfile.briefIPWidth)
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }

    /// Reads one 67-byte brief.
    public static func decode(_ reader: inout BodyReader) throws(FDFSProtocolError) -> StorageBrief {
        let status = try reader.byte("status")
        let port = try reader.int32("port")
        let id = try reader.fixedString("id", width: storageIDWidth)
        let ip = try reader.fixedString("ip_addr", width: WireProfile.briefIPWidth)
        return StorageBrief(status: status, port: port, id: id, ip: ip)
    }

    /// Decodes a body that is exactly one brief (the GET_STATUS reply).
    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageBrief {
        guard body.readableBytes == size else {
            throw FDFSProtocolError(.malformed, "storage brief must be \(size) bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "storage brief")
        return try decode(&reader)
    }

    /// Decodes a body of N briefs (REPLICA_CHG).
    public static func decodeList(_ body: ByteBuffer) throws(FDFSProtocolError) -> [StorageBrief] {
        guard body.readableBytes % size == 0 else {
            throw FDFSProtocolError(.malformed, "brief list of \(body.readableBytes) bytes is not a multiple of \(size)")
        }
        var reader = BodyReader(body, context: "brief list")
        var result: [StorageBrief] = []
        while reader.remaining > 0 { result.append(try decode(&reader)) }
        return result
    }
}

// MARK: - JOIN (81)

/// STORAGE_JOIN (81) request: a 145-byte fixed part, then one `host:port\n` line per tracker
/// the storage knows (≥ 6.13 layout).
public struct StorageJoinRequest: Hashable, Sendable {
    /// Size of the fixed part before the tracker lines.
    public static let fixedSize = 17 + 8 * 6 + 8 + 1 + 1 + storageIDWidth + WireProfile.briefIPWidth + 8
    /// Most trackers a storage may list (`FDFS_MAX_TRACKERS`).
    public static let maxTrackers = 16
    /// Longest tracker line accepted (`FDFS_MAX_MULTI_IP_PORT_SIZE`-like bound).
    public static let maxTrackerLineLength = 128

    public var group: String
    public var storagePort: Int64
    public var storePathCount: Int64
    public var subdirCountPerPath: Int64
    public var uploadPriority: Int64
    /// Unix time of the storage's first join (persisted by the storage).
    public var joinTime: Int64
    /// Unix time the storage process started.
    public var upTime: Int64
    /// Version text, e.g. "6.16.1" (8-byte field).
    public var version: String
    /// True while the storage has not finished its initial sync.
    public var initFlag: Bool
    /// The storage's own last known status (``StorageStatus`` raw value), or −1 when unknown.
    public var status: Int8
    /// Storage id when `use_storage_id` is on, else empty.
    public var storageID: String
    /// The IP the storage used to reach this tracker.
    public var currentTrackerIP: String
    /// Every tracker the storage knows, as `host:port` (`ip1,ip2:port` for dual addresses).
    public var trackers: [String]

    public init(
        group: String, storagePort: Int64, storePathCount: Int64 = 1, subdirCountPerPath: Int64 = 256,
        uploadPriority: Int64 = 10, joinTime: Int64, upTime: Int64, version: String = "6.16.1",
        initFlag: Bool = false, status: Int8 = 0, storageID: String = "", currentTrackerIP: String,
        trackers: [String]
    ) {
        self.group = group
        self.storagePort = storagePort
        self.storePathCount = storePathCount
        self.subdirCountPerPath = subdirCountPerPath
        self.uploadPriority = uploadPriority
        self.joinTime = joinTime
        self.upTime = upTime
        self.version = version
        self.initFlag = initFlag
        self.status = status
        self.storageID = storageID
        self.currentTrackerIP = currentTrackerIP
        self.trackers = trackers
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: 17)
        for value in [storagePort, storePathCount, subdirCountPerPath, uploadPriority, joinTime, upTime] {
            buffer.writeInt64(value)
        }
        buffer.writeFixedString(version, width: 8)
        buffer.writeInteger(UInt8(initFlag ? 1 : 0))
        buffer.writeInteger(status)
        buffer.writeFixedString(storageID, width: storageIDWidth)
        buffer.writeFixedString(currentTrackerIP, width: WireProfile.briefIPWidth)
        buffer.writeInt64(Int64(trackers.count))
        for tracker in trackers { buffer.writeString(tracker + "\n") }
        return buffer
    }

    /// Decodes and checks the framing rules of the C tracker: tracker_count in 1...16 and that
    /// many newline-terminated lines. Field values (ports, counts, group charset) are checked by
    /// the tracker, not here.
    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageJoinRequest {
        guard body.readableBytes >= fixedSize else {
            throw FDFSProtocolError(.malformed, "JOIN body of \(body.readableBytes) bytes is shorter than \(fixedSize)")
        }
        var reader = BodyReader(body, context: "JOIN")
        let group = try reader.fixedString("group_name", width: 17)
        let port = try reader.int64("storage_port")
        let paths = try reader.int64("store_path_count")
        let subdirs = try reader.int64("subdir_count_per_path")
        let priority = try reader.int64("upload_priority")
        let joinTime = try reader.int64("join_time")
        let upTime = try reader.int64("up_time")
        let version = try reader.fixedString("version", width: 8)
        let initFlag = try reader.byte("init_flag") != 0
        let status = Int8(bitPattern: try reader.byte("status"))
        let storageID = try reader.fixedString("storage_id", width: storageIDWidth)
        let trackerIP = try reader.fixedString("current_tracker_ip", width: WireProfile.briefIPWidth)
        let count = try reader.int64("tracker_count")
        guard (1...Int64(maxTrackers)).contains(count) else {
            throw FDFSProtocolError(.malformed, "JOIN tracker_count \(count) is outside 1...\(maxTrackers)")
        }
        guard reader.remaining <= Int(count) * maxTrackerLineLength else {
            throw FDFSProtocolError(.malformed, "JOIN tracker list of \(reader.remaining) bytes is too long for \(count) trackers")
        }
        let text = try reader.fixedString("tracker_list", width: reader.remaining)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // A well-formed list ends with "\n", which leaves one empty element after the split.
        guard lines.count >= Int(count) + 1 else {
            throw FDFSProtocolError(.malformed, "JOIN has \(lines.count - 1) tracker lines, tracker_count says \(count)")
        }
        lines = Array(lines.prefix(Int(count)))
        return StorageJoinRequest(
            group: group, storagePort: port, storePathCount: paths, subdirCountPerPath: subdirs,
            uploadPriority: priority, joinTime: joinTime, upTime: upTime, version: version,
            initFlag: initFlag, status: status, storageID: storageID, currentTrackerIP: trackerIP,
            trackers: lines
        )
    }
}

/// STORAGE_JOIN (81) response (≥ 6.03, 17 bytes): the status the tracker holds for the storage
/// and its assigned sync source (empty if none).
public struct StorageJoinResponse: Hashable, Sendable {
    public static let size = 1 + storageIDWidth

    /// A ``StorageStatus`` raw value.
    public var status: UInt8
    public var sourceID: String

    public init(status: UInt8, sourceID: String = "") {
        self.status = status
        self.sourceID = sourceID
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(status)
        buffer.writeFixedString(sourceID, width: storageIDWidth)
        return buffer
    }

    /// Accepts the 17-byte layout and the 16-byte one of ≤ 6.02 (source id only; status 0).
    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageJoinResponse {
        var reader = BodyReader(body, context: "JOIN reply")
        switch body.readableBytes {
        case size:
            let status = try reader.byte("my_status")
            return StorageJoinResponse(status: status, sourceID: try reader.fixedString("src_id", width: storageIDWidth))
        case storageIDWidth:
            return StorageJoinResponse(status: 0, sourceID: try reader.fixedString("src_id", width: storageIDWidth))
        default:
            throw FDFSProtocolError(.malformed, "JOIN reply must be 17 bytes, got \(body.readableBytes)")
        }
    }
}

// MARK: - BEAT (83), DISK_USAGE (84), SYNC_REPORT (89)

/// STORAGE_BEAT (83) request: empty, or the storage's 348-byte counters when they changed.
public struct StorageBeatRequest: Hashable, Sendable {
    public var counters: StorageCounters?

    public init(counters: StorageCounters? = nil) { self.counters = counters }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        counters?.encode(into: &buffer)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageBeatRequest {
        switch body.readableBytes {
        case 0: return StorageBeatRequest()
        case StorageCounters.size:
            var reader = BodyReader(body, context: "BEAT")
            return StorageBeatRequest(counters: try StorageCounters.decode(&reader))
        default:
            throw FDFSProtocolError(.malformed, "BEAT body must be 0 or \(StorageCounters.size) bytes, got \(body.readableBytes)")
        }
    }
}

/// Space of one store path, in MB, as DISK_USAGE reports it.
public struct StorePathUsage: Hashable, Sendable {
    public var totalMB: Int64
    public var freeMB: Int64

    public init(totalMB: Int64, freeMB: Int64) {
        self.totalMB = totalMB
        self.freeMB = freeMB
    }
}

/// STORAGE_REPORT_DISK_USAGE (84) request: total and free MB of every store path, in order.
public struct StorageDiskUsageReport: Hashable, Sendable {
    public var paths: [StorePathUsage]

    public init(paths: [StorePathUsage]) { self.paths = paths }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        for path in paths {
            buffer.writeInt64(path.totalMB)
            buffer.writeInt64(path.freeMB)
        }
        return buffer
    }

    /// Decodes any whole number of 16-byte entries; the tracker checks the count against the
    /// group's store_path_count.
    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageDiskUsageReport {
        guard body.readableBytes > 0, body.readableBytes % 16 == 0 else {
            throw FDFSProtocolError(.malformed, "DISK_USAGE body of \(body.readableBytes) bytes is not a multiple of 16")
        }
        var reader = BodyReader(body, context: "DISK_USAGE")
        var paths: [StorePathUsage] = []
        while reader.remaining > 0 {
            let total = try reader.int64("total_mb")
            paths.append(StorePathUsage(totalMB: total, freeMB: try reader.int64("free_mb")))
        }
        return StorageDiskUsageReport(paths: paths)
    }
}

/// STORAGE_SYNC_REPORT (89) request: for each other group member, the source-side timestamp of
/// the newest record received from it (0 when nothing was received).
public struct StorageSyncReport: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var sourceID: String
        public var timestamp: Int32

        public init(sourceID: String, timestamp: Int32) {
            self.sourceID = sourceID
            self.timestamp = timestamp
        }
    }

    public static let entrySize = storageIDWidth + 4
    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        for entry in entries {
            buffer.writeFixedString(entry.sourceID, width: storageIDWidth)
            buffer.writeInteger(entry.timestamp, endianness: .big)
        }
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageSyncReport {
        guard body.readableBytes > 0, body.readableBytes % entrySize == 0 else {
            throw FDFSProtocolError(.malformed, "SYNC_REPORT body of \(body.readableBytes) bytes is not a multiple of \(entrySize)")
        }
        var reader = BodyReader(body, context: "SYNC_REPORT")
        var entries: [Entry] = []
        while reader.remaining > 0 {
            let id = try reader.fixedString("src_id", width: storageIDWidth)
            entries.append(Entry(sourceID: id, timestamp: try reader.int32("timestamp")))
        }
        return StorageSyncReport(entries: entries)
    }
}

/// The success reply to BEAT (83), DISK_USAGE (84) and SYNC_REPORT (89): a flags byte, then the
/// briefs the flags announce, in this order: leader tracker, trunk server, group members.
public struct TrackerBeatResponse: Hashable, Sendable {
    /// Flag bit: the tracker leader changed; the leader's brief follows.
    public static let leaderChangedFlag: UInt8 = 1
    /// Flag bit: the group's trunk server changed; its brief (zeros if none) follows.
    public static let trunkServerChangedFlag: UInt8 = 2
    /// Flag bit: the group's member list changed; every member's brief follows, sorted by id.
    public static let groupMembersChangedFlag: UInt8 = 4

    public var leader: StorageBrief?
    public var trunkServer: StorageBrief?
    /// nil when the member list is not sent; may be empty when it is.
    public var members: [StorageBrief]?

    public init(leader: StorageBrief? = nil, trunkServer: StorageBrief? = nil, members: [StorageBrief]? = nil) {
        self.leader = leader
        self.trunkServer = trunkServer
        self.members = members
    }

    /// The flags byte implied by which parts are present.
    public var flags: UInt8 {
        (leader != nil ? Self.leaderChangedFlag : 0)
            | (trunkServer != nil ? Self.trunkServerChangedFlag : 0)
            | (members != nil ? Self.groupMembersChangedFlag : 0)
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(flags)
        leader?.encode(into: &buffer)
        trunkServer?.encode(into: &buffer)
        for member in members ?? [] { member.encode(into: &buffer) }
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> TrackerBeatResponse {
        var reader = BodyReader(body, context: "beat reply")
        let flags = try reader.byte("flags")
        var response = TrackerBeatResponse()
        if flags & leaderChangedFlag != 0 { response.leader = try StorageBrief.decode(&reader) }
        if flags & trunkServerChangedFlag != 0 { response.trunkServer = try StorageBrief.decode(&reader) }
        if flags & groupMembersChangedFlag != 0 {
            guard reader.remaining % StorageBrief.size == 0 else {
                throw FDFSProtocolError(.malformed, "beat reply member list of \(reader.remaining) bytes is not a multiple of \(StorageBrief.size)")
            }
            var members: [StorageBrief] = []
            while reader.remaining > 0 { members.append(try StorageBrief.decode(&reader)) }
            response.members = members
        }
        try reader.expectEnd()
        return response
    }
}

// MARK: - Sync coordination (87, 88, 86, 79, 76, 59)

/// A storage's initial-sync source and the timestamp up to which the source replays old records
/// (`TrackerStorageSyncReqBody`, 24 bytes: src_id str[16] + until int64).
///
/// The SYNC_DEST_REQ (87), SYNC_SRC_REQ (86) and SYNC_DEST_QUERY (79) replies carry it or are
/// empty (no source); SYNC_NOTIFY (88) sends it, with an empty id meaning "no source".
public struct StorageSyncSource: Hashable, Sendable {
    public static let size = storageIDWidth + 8

    public var sourceID: String
    public var untilTimestamp: Int64

    public init(sourceID: String, untilTimestamp: Int64) {
        self.sourceID = sourceID
        self.untilTimestamp = untilTimestamp
    }

    /// The SYNC_NOTIFY body of a storage without a source.
    public static let none = StorageSyncSource(sourceID: "", untilTimestamp: 0)

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(sourceID, width: storageIDWidth)
        buffer.writeInt64(untilTimestamp)
        return buffer
    }

    /// Decodes exactly 24 bytes (the SYNC_NOTIFY request).
    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageSyncSource {
        guard body.readableBytes == size else {
            throw FDFSProtocolError(.malformed, "sync source body must be \(size) bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "sync source")
        let id = try reader.fixedString("src_id", width: storageIDWidth)
        return StorageSyncSource(sourceID: id, untilTimestamp: try reader.int64("until_timestamp"))
    }

    /// Decodes a reply that is either empty (nil: no source) or 24 bytes.
    public static func decodeOptional(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageSyncSource? {
        body.readableBytes == 0 ? nil : try decode(body)
    }

    /// Encodes an optional source as a reply body (empty for nil).
    public static func encodeOptional(_ source: StorageSyncSource?) -> ByteBuffer {
        source?.encoded() ?? ByteBuffer()
    }
}

/// STORAGE_SYNC_SRC_REQ (86) request: which storage is the sync source of `destinationID`?
/// (group str[16] + destination storage id str[16]). The reply is an optional
/// ``StorageSyncSource``.
public struct StorageSyncSourceRequest: Hashable, Sendable {
    public static let size = groupWidth + storageIDWidth

    public var group: String
    public var destinationID: String

    public init(group: String, destinationID: String) {
        self.group = group
        self.destinationID = destinationID
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: groupWidth)
        buffer.writeFixedString(destinationID, width: storageIDWidth)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageSyncSourceRequest {
        guard body.readableBytes == size else {
            throw FDFSProtocolError(.malformed, "SYNC_SRC_REQ body must be \(size) bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "SYNC_SRC_REQ")
        let group = try reader.fixedString("group_name", width: groupWidth)
        return StorageSyncSourceRequest(group: group, destinationID: try reader.fixedString("dest_id", width: storageIDWidth))
    }
}

/// STORAGE_REPORT_STATUS (76) request: a sync source tells the tracker another storage's new
/// status (group str[16] + one brief). Reply: header only.
public struct StorageReportStatusRequest: Hashable, Sendable {
    public static let size = groupWidth + StorageBrief.size

    public var group: String
    public var storage: StorageBrief

    public init(group: String, storage: StorageBrief) {
        self.group = group
        self.storage = storage
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: groupWidth)
        storage.encode(into: &buffer)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageReportStatusRequest {
        guard body.readableBytes == size else {
            throw FDFSProtocolError(.malformed, "REPORT_STATUS body must be \(size) bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "REPORT_STATUS")
        let group = try reader.fixedString("group_name", width: groupWidth)
        return StorageReportStatusRequest(group: group, storage: try StorageBrief.decode(&reader))
    }
}

/// STORAGE_CHANGE_STATUS (59) request: one byte, the status the leader holds for the sender.
/// Reply: header only.
public struct StorageChangeStatusRequest: Hashable, Sendable {
    public var status: UInt8

    public init(status: UInt8) { self.status = status }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(status)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageChangeStatusRequest {
        guard body.readableBytes == 1 else {
            throw FDFSProtocolError(.malformed, "CHANGE_STATUS body must be 1 byte, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "CHANGE_STATUS")
        return StorageChangeStatusRequest(status: try reader.byte("status"))
    }
}

/// STORAGE_REPLICA_CHG (85) request: the sender's view of its group's members (N briefs).
/// Reply: header only.
public struct StorageReplicaChangeRequest: Hashable, Sendable {
    public var storages: [StorageBrief]

    public init(storages: [StorageBrief]) { self.storages = storages }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        for storage in storages { storage.encode(into: &buffer) }
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageReplicaChangeRequest {
        guard body.readableBytes > 0 else { throw FDFSProtocolError(.malformed, "REPLICA_CHG body is empty") }
        return StorageReplicaChangeRequest(storages: try StorageBrief.decodeList(body))
    }
}

// MARK: - Bootstrap helpers (75, 60, 70, 71, 77)

/// STORAGE_PARAMETER_REQ (75) reply: `key=value\n` lines that the storage adopts
/// (use_storage_id, storage_sync_file_max_delay, reserved_storage_space, trunk settings, …).
/// The request body is empty.
public struct TrackerParameters: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var key: String
        public var value: String

        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// The lines in wire order.
    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// The value of `key`, or nil.
    public subscript(key: String) -> String? { entries.first { $0.key == key }?.value }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        for entry in entries { buffer.writeString("\(entry.key)=\(entry.value)\n") }
        return buffer
    }

    /// Splits lines at the first `=`; lines without one are ignored, as the storage does.
    public static func decode(_ body: ByteBuffer) -> TrackerParameters {
        var copy = body
        let text = copy.readRemainingString()
        var entries: [Entry] = []
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            entries.append(Entry(key: String(line[..<equals]), value: String(line[line.index(after: equals)...])))
        }
        return TrackerParameters(entries: entries)
    }
}

/// STORAGE_GET_MY_IP (60) request: group str[17] + the storage port int32 (21 bytes). The reply
/// is the caller's IP as seen by the tracker, as plain text.
public struct StorageGetMyIPRequest: Hashable, Sendable {
    public static let size = 17 + 4

    public var group: String
    public var port: Int32

    public init(group: String, port: Int32) {
        self.group = group
        self.port = port
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: 17)
        buffer.writeInteger(port, endianness: .big)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageGetMyIPRequest {
        guard body.readableBytes == size else {
            throw FDFSProtocolError(.malformed, "GET_MY_IP body must be \(size) bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "GET_MY_IP")
        let group = try reader.fixedString("group_name", width: 17)
        return StorageGetMyIPRequest(group: group, port: try reader.int32("port"))
    }
}

/// Request naming a storage by group and address: group str[16] + `ip:port` text. Used by
/// GET_SERVER_ID (70; reply: the storage id as text) and GET_STATUS (71; reply: one
/// ``StorageBrief``).
public struct StorageAddressRequest: Hashable, Sendable {
    /// Longest `ip:port` text accepted (`FDFS_MAX_IP_PORT_SIZE`-like bound).
    public static let maxAddressLength = 64

    public var group: String
    public var ip: String
    public var port: Int

    public init(group: String, ip: String, port: Int) {
        self.group = group
        self.ip = ip
        self.port = port
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: groupWidth)
        buffer.writeString(ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)")
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageAddressRequest {
        guard body.readableBytes > groupWidth, body.readableBytes <= groupWidth + maxAddressLength else {
            throw FDFSProtocolError(.malformed, "storage address request of \(body.readableBytes) bytes is outside 17...\(groupWidth + maxAddressLength)")
        }
        var reader = BodyReader(body, context: "storage address request")
        let group = try reader.fixedString("group_name", width: groupWidth)
        let text = try reader.fixedString("address", width: reader.remaining)
        var host = Substring(text)
        var portText: Substring
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            portText = host[host.index(after: close)...].drop { $0 == ":" }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        } else {
            throw FDFSProtocolError(.malformed, "storage address '\(text)' has no port")
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else {
            throw FDFSProtocolError(.malformed, "bad storage address '\(text)'")
        }
        return StorageAddressRequest(group: group, ip: String(host), port: port)
    }
}

/// STORAGE_CHANGELOG_REQ (77) request: empty on a joined connection, else group str[16] +
/// storage id str[16]. The reply is the tracker's changelog text from the storage's offset
/// (empty when there is nothing new, which is what trackers without IP-change support send).
public struct StorageChangelogRequest: Hashable, Sendable {
    public static let namedSize = groupWidth + storageIDWidth

    /// nil on a joined connection (empty body).
    public var group: String?
    public var storageID: String?

    public init(group: String? = nil, storageID: String? = nil) {
        self.group = group
        self.storageID = storageID
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        if let group {
            buffer.writeFixedString(group, width: groupWidth)
            buffer.writeFixedString(storageID ?? "", width: storageIDWidth)
        }
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> StorageChangelogRequest {
        switch body.readableBytes {
        case 0: return StorageChangelogRequest()
        case namedSize:
            var reader = BodyReader(body, context: "CHANGELOG_REQ")
            let group = try reader.fixedString("group_name", width: groupWidth)
            return StorageChangelogRequest(group: group, storageID: try reader.fixedString("storage_id", width: storageIDWidth))
        default:
            throw FDFSProtocolError(.malformed, "CHANGELOG_REQ body must be 0 or \(namedSize) bytes, got \(body.readableBytes)")
        }
    }
}

// MARK: - Admin (93, 108)

/// SERVER_DELETE_STORAGE (93) request: group str[16] + storage id (1–15 bytes, no padding).
/// Reply: header only (ENOENT unknown, EBUSY while ONLINE/ACTIVE/RECOVERY, EALREADY if deleted).
public struct DeleteStorageRequest: Hashable, Sendable {
    public var group: String
    public var storageID: String

    public init(group: String, storageID: String) {
        self.group = group
        self.storageID = storageID
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: groupWidth)
        buffer.writeString(String(decoding: storageID.utf8.prefix(storageIDWidth - 1), as: UTF8.self))
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> DeleteStorageRequest {
        guard body.readableBytes > groupWidth, body.readableBytes < groupWidth + storageIDWidth else {
            throw FDFSProtocolError(.malformed, "DELETE_STORAGE body must be 17 to 31 bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "DELETE_STORAGE")
        let group = try reader.fixedString("group_name", width: groupWidth)
        let id = try reader.fixedString("storage_id", width: reader.remaining)
        guard !id.isEmpty else { throw FDFSProtocolError(.malformed, "DELETE_STORAGE names no storage") }
        return DeleteStorageRequest(group: group, storageID: id)
    }
}

/// SERVER_DELETE_GROUP (108) request: group str[16], exactly. Reply: header only (ENOENT
/// unknown, EBUSY while the group still has storages).
public struct DeleteGroupRequest: Hashable, Sendable {
    public var group: String

    public init(group: String) { self.group = group }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: groupWidth)
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> DeleteGroupRequest {
        guard body.readableBytes == groupWidth else {
            throw FDFSProtocolError(.malformed, "DELETE_GROUP body must be \(groupWidth) bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "DELETE_GROUP")
        return DeleteGroupRequest(group: try reader.fixedString("group_name", width: groupWidth))
    }
}
