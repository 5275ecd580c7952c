import FDFSProtocol

/// What the tracker knows about one storage server.
public struct StorageRecord: Sendable, Hashable {
    /// Storage id: the storage's IP text (this tracker does not use storage_ids.conf).
    public var id: String
    public var ip: String
    public var port: Int
    public var status: StorageStatus
    /// R_OK (4) / W_OK (2) mask; always both without storage ids.
    public var rwMode: UInt8 = 6
    public var version = ""
    public var joinTime: Int64 = 0
    public var upTime: Int64 = 0
    public var uploadPriority: Int64 = 10
    public var storePathCount = 0
    public var subdirCountPerPath = 0
    /// Space per store path from the last DISK_USAGE.
    public var paths: [StorePathUsage] = []
    public var totalMB: Int64 = 0
    public var freeMB: Int64 = 0
    /// Store path the next upload is pointed at.
    public var currentWritePath = 0
    /// The storage this one copies its initial data from (its "sync source"), if any.
    public var syncSourceID: String?
    /// Records older than this are replayed by the sync source during the initial sync.
    public var syncUntilTimestamp: Int64 = 0
    /// From SYNC_REPORT: files with a timestamp before this have reached this storage.
    public var lastSyncedTimestamp: Int64 = 0
    /// Unix time of the last BEAT (or JOIN).
    public var lastHeartbeat: Int64 = 0
    /// Counters from the last BEAT that carried them.
    public var counters = StorageCounters()

    /// The group member list version this storage was last sent (runtime only).
    var sentMembershipVersion = -1
    /// Token of the connection the storage joined on (runtime only).
    var connectionToken: Int?

    public init(id: String, ip: String, port: Int, status: StorageStatus = .initial) {
        self.id = id
        self.ip = ip
        self.port = port
        self.status = status
    }

    public var isReadable: Bool { status == .active && rwMode & 4 != 0 }
    public var isWritable: Bool { status == .active && rwMode & 2 != 0 }

    /// The brief other storages receive about this one.
    public var brief: StorageBrief {
        StorageBrief(status: status.rawValue, port: Int32(clamping: port), id: id, ip: ip)
    }

    /// The address clients are sent to.
    public var endpoint: StorageEndpoint { StorageEndpoint(ip: ip, port: port) }

    /// Forgets what a deleted storage reported (`tracker_mem_clear_storage_fields`).
    mutating func clearForDeletion() {
        paths = []
        syncSourceID = nil
        syncUntilTimestamp = 0
        totalMB = 0
        freeMB = 0
        storePathCount = 0
        subdirCountPerPath = 0
        uploadPriority = 0
        currentWritePath = 0
        upTime = 0
        counters = StorageCounters()
        lastSyncedTimestamp = 0
        lastHeartbeat = 0
    }
}
