import FDFSProtocol

/// One group and its storages.
public struct GroupRecord: Sendable, Hashable {
    public var name: String
    /// The group's storage port (all members share it without storage ids).
    public var storagePort: Int
    public var storePathCount: Int
    public var subdirCountPerPath: Int
    /// Members by id.
    public var storages: [String: StorageRecord] = [:]
    /// Last synced timestamps reported by SYNC_REPORT: source id → destination id → time.
    public var syncTimestamps: [String: [String: Int32]] = [:]

    /// Bumped whenever a member is added or changes status (`chg_count`); storages whose
    /// ``StorageRecord/sentMembershipVersion`` differs get the member list in their next reply.
    var membershipVersion = 0
    /// Round-robin cursor for uploads (`current_write_server`).
    var currentWriteServer = 0
    /// Round-robin cursor for downloads (`current_read_server`).
    var currentReadServer = 0

    public init(name: String, storagePort: Int, storePathCount: Int, subdirCountPerPath: Int) {
        self.name = name
        self.storagePort = storagePort
        self.storePathCount = storePathCount
        self.subdirCountPerPath = subdirCountPerPath
    }

    /// Every member, sorted by id.
    public var sortedStorages: [StorageRecord] { storages.values.sorted { $0.id < $1.id } }
    /// ACTIVE members that may serve reads, sorted by id.
    public var readable: [StorageRecord] { sortedStorages.filter(\.isReadable) }
    /// ACTIVE members that may take writes, sorted by id.
    public var writable: [StorageRecord] { sortedStorages.filter(\.isWritable) }

    /// The group's space: that of the writable member with the least free space (falling back
    /// to every member that reported, so a listing still shows numbers while none is active).
    public var space: (totalMB: Int64, freeMB: Int64) {
        let candidates = writable.isEmpty ? sortedStorages.filter { $0.status != .deleted && $0.totalMB > 0 } : writable
        guard let smallest = candidates.min(by: { $0.freeMB < $1.freeMB }) else { return (0, 0) }
        return (smallest.totalMB, smallest.freeMB)
    }

    /// The designated store server (`pStoreServer`): the writable member with the smallest
    /// upload priority under `store_server = 2`, else the first writable member.
    func storeServer(policy: StoreServerPolicy) -> StorageRecord? {
        let list = writable
        guard var best = list.first else { return nil }
        if policy == .firstByPriority {
            for storage in list.dropFirst() where storage.uploadPriority < best.uploadPriority { best = storage }
        }
        return best
    }

    /// Changes a member's status; a real change makes every member receive the list again.
    mutating func setStatus(_ status: StorageStatus, of id: String) {
        guard let current = storages[id]?.status, current != status else { return }
        storages[id]!.status = status
        membershipVersion += 1
    }
}
