import NIOCore

/// One group as LIST_ONE_GROUP (90) and LIST_ALL_GROUPS (91) describe it. Fields that only one
/// layout carries are zero in the other.
public struct GroupStat: Hashable, Sendable {
    public static let modernSize = 113
    public static let classicSize = 105

    public var name = ""
    public var totalMB: Int64 = 0
    public var freeMB: Int64 = 0
    /// ≥ 6.13.1 only.
    public var reservedMB: Int64 = 0
    public var trunkFreeMB: Int64 = 0
    public var storageCount: Int64 = 0
    public var storagePort: Int64 = 0
    /// Classic only.
    public var storageHTTPPort: Int64 = 0
    /// Classic only: ACTIVE storages.
    public var activeCount: Int64 = 0
    /// Modern only.
    public var readableCount: Int64 = 0
    /// Modern only.
    public var writableCount: Int64 = 0
    public var currentWriteServer: Int64 = 0
    public var storePathCount: Int64 = 0
    public var subdirCountPerPath: Int64 = 0
    public var currentTrunkFileID: Int64 = -1

    public init() {}

    public func encode(into buffer: inout ByteBuffer, classic: Bool) {
        buffer.writeFixedString(name, width: 17)
        let fields: [Int64] = classic
            ? [totalMB, freeMB, trunkFreeMB, storageCount, storagePort, storageHTTPPort, activeCount,
               currentWriteServer, storePathCount, subdirCountPerPath, currentTrunkFileID]
            : [totalMB, freeMB, reservedMB, trunkFreeMB, storageCount, storagePort, readableCount,
               writableCount, currentWriteServer, storePathCount, subdirCountPerPath, currentTrunkFileID]
        for field in fields { buffer.writeInt64(field) }
    }

    /// Decodes a LIST_*_GROUP reply: a whole number of 113-byte or 105-byte records.
    public static func decodeList(_ body: ByteBuffer) throws(FDFSProtocolError) -> [GroupStat] {
        let length = body.readableBytes
        guard length > 0 else { return [] }
        let classic: Bool
        if length % modernSize == 0 { classic = false } else if length % classicSize == 0 { classic = true } else {
            throw FDFSProtocolError(.malformed, "group list of \(length) bytes is neither 113- nor 105-byte records")
        }
        var reader = BodyReader(body, context: "group list")
        var result: [GroupStat] = []
        while reader.remaining > 0 {
            var stat = GroupStat()
            stat.name = try reader.fixedString("group_name", width: 17)
            var values: [Int64] = []
            for _ in 0..<(classic ? 11 : 12) { values.append(try reader.int64("counter")) }
            if classic {
                (stat.totalMB, stat.freeMB, stat.trunkFreeMB, stat.storageCount, stat.storagePort) = (values[0], values[1], values[2], values[3], values[4])
                (stat.storageHTTPPort, stat.activeCount, stat.currentWriteServer) = (values[5], values[6], values[7])
                (stat.storePathCount, stat.subdirCountPerPath, stat.currentTrunkFileID) = (values[8], values[9], values[10])
            } else {
                (stat.totalMB, stat.freeMB, stat.reservedMB, stat.trunkFreeMB, stat.storageCount) = (values[0], values[1], values[2], values[3], values[4])
                (stat.storagePort, stat.readableCount, stat.writableCount, stat.currentWriteServer) = (values[5], values[6], values[7], values[8])
                (stat.storePathCount, stat.subdirCountPerPath, stat.currentTrunkFileID) = (values[9], values[10], values[11])
            }
            result.append(stat)
        }
        return result
    }
}

/// A storage's counters (`FDFSStorageStatBuff`, 348 bytes): the BEAT body and part of every
/// storage-stat record.
public struct StorageCounters: Hashable, Sendable {
    public static let size = 348
    /// Names of the 19 total/success pairs, in wire order.
    public static let pairNames = [
        "upload", "append", "modify", "truncate", "set_meta", "delete", "download", "get_meta",
        "create_link", "delete_link", "upload_bytes", "append_bytes", "modify_bytes", "download_bytes",
        "sync_in_bytes", "sync_out_bytes", "file_open", "file_read", "file_write",
    ]

    public var connectionAllocCount: Int32 = 0
    public var connectionCurrentCount: Int32 = 0
    public var connectionMaxCount: Int32 = 0
    /// 38 values: for each of ``pairNames``, the total then the success count.
    public var pairs: [Int64] = Array(repeating: 0, count: 38)
    public var lastSourceUpdate: Int64 = 0
    public var lastSyncUpdate: Int64 = 0
    public var lastSyncedTimestamp: Int64 = 0
    public var lastHeartBeatTime: Int64 = 0

    public init() {}

    /// Total count for pair `name`.
    public func total(_ name: String) -> Int64 { Self.pairNames.firstIndex(of: name).map { pairs[$0 * 2] } ?? 0 }
    /// Success count for pair `name`.
    public func success(_ name: String) -> Int64 { Self.pairNames.firstIndex(of: name).map { pairs[$0 * 2 + 1] } ?? 0 }

    /// Adds to pair `name`.
    public mutating func record(_ name: String, success: Bool, amount: Int64 = 1) {
        guard let index = Self.pairNames.firstIndex(of: name) else { return }
        pairs[index * 2] += amount
        if success { pairs[index * 2 + 1] += amount }
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(connectionAllocCount, endianness: .big)
        buffer.writeInteger(connectionCurrentCount, endianness: .big)
        buffer.writeInteger(connectionMaxCount, endianness: .big)
        for value in pairs { buffer.writeInt64(value) }
        for value in [lastSourceUpdate, lastSyncUpdate, lastSyncedTimestamp, lastHeartBeatTime] { buffer.writeInt64(value) }
    }

    public static func decode(_ reader: inout BodyReader) throws(FDFSProtocolError) -> StorageCounters {
        var counters = StorageCounters()
        counters.connectionAllocCount = try reader.int32("alloc_count")
        counters.connectionCurrentCount = try reader.int32("current_count")
        counters.connectionMaxCount = try reader.int32("max_count")
        for index in 0..<38 { counters.pairs[index] = try reader.int64("counter") }
        counters.lastSourceUpdate = try reader.int64("last_source_update")
        counters.lastSyncUpdate = try reader.int64("last_sync_update")
        counters.lastSyncedTimestamp = try reader.int64("last_synced_timestamp")
        counters.lastHeartBeatTime = try reader.int64("last_heart_beat_time")
        return counters
    }
}

/// Status values a tracker keeps for each storage (reference §5.2).
public enum StorageStatus: UInt8, Sendable, CaseIterable {
    case initial = 0, waitSync = 1, syncing = 2, ipChanged = 3, deleted = 4, offline = 5, online = 6, active = 7, recovery = 9, none = 99

    /// The name `fdfs_monitor` prints.
    public var name: String {
        switch self {
        case .initial: "INIT"
        case .waitSync: "WAIT_SYNC"
        case .syncing: "SYNCING"
        case .ipChanged: "IP_CHANGED"
        case .deleted: "DELETED"
        case .offline: "OFFLINE"
        case .online: "ONLINE"
        case .active: "ACTIVE"
        case .recovery: "RECOVERY"
        case .none: "NONE"
        }
    }
}

/// One storage as LIST_STORAGE (92) describes it.
public struct StorageStat: Hashable, Sendable {
    public static let modernIPv4Size = 487
    public static let modernIPv6Size = 517
    public static let classicSize = 612

    public var status: UInt8 = 0
    /// R_OK (4) / W_OK (2) mask; modern only (classic records report 6).
    public var rwMode: UInt8 = 6
    public var id = ""
    public var ip = ""
    /// Classic only.
    public var domainName = ""
    public var sourceID = ""
    public var version = ""
    public var joinTime: Int64 = 0
    public var upTime: Int64 = 0
    public var totalMB: Int64 = 0
    public var freeMB: Int64 = 0
    /// Modern only.
    public var reservedMB: Int64 = 0
    public var uploadPriority: Int64 = 0
    public var storePathCount: Int64 = 0
    public var subdirCountPerPath: Int64 = 0
    public var currentWritePath: Int64 = 0
    public var storagePort: Int64 = 0
    /// Classic only.
    public var storageHTTPPort: Int64 = 0
    public var counters = StorageCounters()
    public var isTrunkServer = false

    public init() {}

    /// The status as an enum, when known.
    public var storageStatus: StorageStatus? { StorageStatus(rawValue: status) }

    public func encode(into buffer: inout ByteBuffer, profile: WireProfile) {
        buffer.writeInteger(status)
        if profile.classicListing {
            buffer.writeFixedString(id, width: 16)
            buffer.writeFixedString(ip, width: 16)
            buffer.writeFixedString(domainName, width: 128)
            buffer.writeFixedString(sourceID, width: 16)
            buffer.writeFixedString(version, width: 6)
            for value in [joinTime, upTime, totalMB, freeMB, uploadPriority, storePathCount, subdirCountPerPath, currentWritePath, storagePort, storageHTTPPort] {
                buffer.writeInt64(value)
            }
        } else {
            buffer.writeInteger(rwMode)
            buffer.writeFixedString(id, width: 16)
            buffer.writeFixedString(ip, width: profile.ipFieldWidth)
            buffer.writeFixedString(sourceID, width: 16)
            buffer.writeFixedString(version, width: 8)
            for value in [joinTime, upTime, totalMB, freeMB, reservedMB, uploadPriority, storePathCount, subdirCountPerPath, currentWritePath, storagePort] {
                buffer.writeInt64(value)
            }
        }
        counters.encode(into: &buffer)
        buffer.writeInteger(UInt8(isTrunkServer ? 1 : 0))
    }

    /// Decodes a LIST_STORAGE reply of 487-, 517- or 612-byte records.
    public static func decodeList(_ body: ByteBuffer) throws(FDFSProtocolError) -> [StorageStat] {
        let length = body.readableBytes
        guard length > 0 else { return [] }
        let size: Int
        if length % modernIPv4Size == 0 { size = modernIPv4Size } else if length % modernIPv6Size == 0 { size = modernIPv6Size } else if length % classicSize == 0 { size = classicSize } else {
            throw FDFSProtocolError(.malformed, "storage list of \(length) bytes is not 487-, 517- or 612-byte records")
        }
        var reader = BodyReader(body, context: "storage list")
        var result: [StorageStat] = []
        while reader.remaining > 0 {
            var stat = StorageStat()
            stat.status = try reader.byte("status")
            if size == classicSize {
                stat.id = try reader.fixedString("id", width: 16)
                stat.ip = try reader.fixedString("ip_addr", width: 16)
                stat.domainName = try reader.fixedString("domain_name", width: 128)
                stat.sourceID = try reader.fixedString("src_id", width: 16)
                stat.version = try reader.fixedString("version", width: 6)
                var values: [Int64] = []
                for _ in 0..<10 { values.append(try reader.int64("field")) }
                (stat.joinTime, stat.upTime, stat.totalMB, stat.freeMB, stat.uploadPriority) = (values[0], values[1], values[2], values[3], values[4])
                (stat.storePathCount, stat.subdirCountPerPath, stat.currentWritePath, stat.storagePort, stat.storageHTTPPort) = (values[5], values[6], values[7], values[8], values[9])
            } else {
                stat.rwMode = try reader.byte("rw_mode")
                stat.id = try reader.fixedString("id", width: 16)
                stat.ip = try reader.fixedString("ip_addr", width: size == modernIPv4Size ? 16 : 46)
                stat.sourceID = try reader.fixedString("src_id", width: 16)
                stat.version = try reader.fixedString("version", width: 8)
                var values: [Int64] = []
                for _ in 0..<10 { values.append(try reader.int64("field")) }
                (stat.joinTime, stat.upTime, stat.totalMB, stat.freeMB, stat.reservedMB) = (values[0], values[1], values[2], values[3], values[4])
                (stat.uploadPriority, stat.storePathCount, stat.subdirCountPerPath, stat.currentWritePath, stat.storagePort) = (values[5], values[6], values[7], values[8], values[9])
            }
            stat.counters = try StorageCounters.decode(&reader)
            stat.isTrunkServer = try reader.byte("if_trunk_server") != 0
            result.append(stat)
        }
        return result
    }
}

/// LIST_STORAGE (92) request: a group and optionally one storage id.
public struct ListStorageRequest: Hashable, Sendable {
    public var group: String
    public var storageID: String?

    public init(group: String, storageID: String? = nil) {
        self.group = group
        self.storageID = storageID
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFixedString(group, width: 16)
        if let storageID, !storageID.isEmpty { buffer.writeBytes(Array(storageID.utf8.prefix(15))) }
        return buffer
    }

    public static func decode(_ body: ByteBuffer) throws(FDFSProtocolError) -> ListStorageRequest {
        guard (16...31).contains(body.readableBytes) else {
            throw FDFSProtocolError(.malformed, "LIST_STORAGE body must be 16 to 31 bytes, got \(body.readableBytes)")
        }
        var reader = BodyReader(body, context: "LIST_STORAGE")
        let group = try reader.fixedString("group_name", width: 16)
        let id = try reader.fixedString("storage_id", width: reader.remaining)
        return ListStorageRequest(group: group, storageID: id.isEmpty ? nil : id)
    }
}
