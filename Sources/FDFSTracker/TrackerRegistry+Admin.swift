import FDFSProtocol

/// Listing (90–92), administration (93, 108) and storage lookups (70, 71).
extension TrackerRegistry {
    // MARK: - Listing

    /// The record LIST_ONE_GROUP / LIST_ALL_GROUPS sends for a group.
    public func groupStat(_ name: String) throws(TrackerError) -> GroupStat {
        guard let group = groups[name] else { throw TrackerError(.notFound, "no group \(name)") }
        let space = group.space
        var stat = GroupStat()
        stat.name = group.name
        stat.totalMB = space.totalMB
        stat.freeMB = space.freeMB
        stat.reservedMB = settings.reservedSpace.reservedMB(totalMB: space.totalMB)
        stat.trunkFreeMB = 0
        stat.storageCount = Int64(group.storages.count)
        stat.storagePort = Int64(group.storagePort)
        stat.storageHTTPPort = 0
        stat.activeCount = Int64(group.storages.values.filter { $0.status == .active }.count)
        stat.readableCount = Int64(group.readable.count)
        stat.writableCount = Int64(group.writable.count)
        stat.currentWriteServer = Int64(group.currentWriteServer)
        stat.storePathCount = Int64(group.storePathCount)
        stat.subdirCountPerPath = Int64(group.subdirCountPerPath)
        stat.currentTrunkFileID = -1
        return stat
    }

    /// Every group's record, sorted by name.
    public func groupStats() -> [GroupStat] {
        sortedGroupNames.compactMap { try? groupStat($0) }
    }

    /// LIST_STORAGE (92): the group's storages sorted by id, or only `id` (ENOENT if absent).
    public func storageStats(group name: String, id: String?) throws(TrackerError) -> [StorageStat] {
        guard let group = groups[name] else { throw TrackerError(.notFound, "no group \(name)") }
        var storages = group.sortedStorages
        if let id {
            storages = storages.filter { $0.id == id }
            guard !storages.isEmpty else { throw TrackerError(.notFound, "no storage \(id) in group \(name)") }
        }
        return storages.map { storage in
            var stat = StorageStat()
            stat.status = storage.status.rawValue
            stat.rwMode = storage.rwMode
            stat.id = storage.id
            stat.ip = storage.ip
            stat.sourceID = storage.syncSourceID ?? ""
            stat.version = storage.version
            stat.joinTime = storage.joinTime
            stat.upTime = storage.upTime
            stat.totalMB = storage.totalMB
            stat.freeMB = storage.freeMB
            stat.reservedMB = settings.reservedSpace.reservedMB(totalMB: storage.totalMB)
            stat.uploadPriority = storage.uploadPriority
            stat.storePathCount = Int64(storage.storePathCount)
            stat.subdirCountPerPath = Int64(storage.subdirCountPerPath)
            stat.currentWritePath = Int64(storage.currentWritePath)
            stat.storagePort = Int64(storage.port)
            stat.counters = storage.counters
            stat.counters.lastSyncedTimestamp = storage.lastSyncedTimestamp
            stat.counters.lastHeartBeatTime = storage.lastHeartbeat
            return stat
        }
    }

    // MARK: - Administration

    /// DELETE_STORAGE (93): marks a storage that is not serving as DELETED and forgets what it
    /// reported. ENOENT unknown, EBUSY while ONLINE / ACTIVE / RECOVERY, EALREADY when deleted.
    public mutating func deleteStorage(group name: String, id: String) throws(TrackerError) {
        guard var group = groups[name] else { throw TrackerError(.notFound, "no group \(name)") }
        guard var storage = group.storages[id], storage.status != .ipChanged else {
            throw TrackerError(.notFound, "no storage \(id) in group \(name)")
        }
        switch storage.status {
        case .online, .active, .recovery:
            throw TrackerError(.busy, "storage \(id) of \(name) is \(storage.status.name); stop it first")
        case .deleted:
            throw TrackerError(.alreadyDone, "storage \(id) of \(name) is already deleted")
        default: break
        }
        for other in group.storages.values where other.syncSourceID == id {
            group.storages[other.id]!.syncSourceID = nil
        }
        group.syncTimestamps[id] = nil
        for source in group.syncTimestamps.keys { group.syncTimestamps[source]![id] = nil }
        storage.clearForDeletion()
        group.storages[id] = storage
        group.setStatus(.deleted, of: id)
        groups[name] = group
        needsSave = true
    }

    /// DELETE_GROUP (108): removes a group that has no storage left but deleted ones. ENOENT
    /// unknown, EBUSY while a storage that is not DELETED remains.
    public mutating func deleteGroup(_ name: String) throws(TrackerError) {
        guard let group = groups[name] else { throw TrackerError(.notFound, "no group \(name)") }
        let remaining = group.storages.values.filter { $0.status != .deleted && $0.status != .ipChanged }
        guard remaining.isEmpty else {
            throw TrackerError(.busy, "group \(name) still has \(remaining.count) storage(s); delete them first")
        }
        groups[name] = nil
        needsSave = true
    }

    // MARK: - Lookups

    /// GET_STATUS (71): the brief of the storage at `ip:port`.
    public func storageBrief(_ request: StorageAddressRequest) throws(TrackerError) -> StorageBrief {
        guard let group = groups[request.group] else { throw TrackerError(.notFound, "no group \(request.group)") }
        guard let storage = group.storages.values.first(where: { $0.ip == request.ip && $0.port == request.port }) else {
            throw TrackerError(.notFound, "no storage \(request.ip):\(request.port) in group \(request.group)")
        }
        return storage.brief
    }

    /// GET_SERVER_ID (70): without storage ids a storage's id is its IP.
    public func storageID(_ request: StorageAddressRequest) -> String { request.ip }
}
