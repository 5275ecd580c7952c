import FDFSProtocol

/// The tracker's state as a value: groups, storages, their status machine (reference §5.2) and
/// the cursors of the placement policies. No I/O and no clock: every call that depends on time
/// takes `now` (unix seconds), so tests drive it directly.
///
/// This tracker is always its own leader: with several trackers configured, each one answers
/// independently, and storages report to all of them.
public struct TrackerRegistry: Sendable {
    public var settings: TrackerSettings
    public internal(set) var groups: [String: GroupRecord] = [:]
    /// Round-robin / load-balance cursor over the groups sorted by name (`current_write_group`).
    var currentWriteGroup = 0
    /// Set by every change that belongs in the persisted state; the owner saves and clears it.
    public var needsSave = false
    /// Set by frequent, minor changes (sync timestamps, disk space): saved with the next
    /// periodic check rather than at once.
    public var needsLazySave = false
    private var nextConnectionToken = 1

    public init(settings: TrackerSettings) {
        self.settings = settings
    }

    /// Group names in the order the C tracker sorts them (byte order).
    public var sortedGroupNames: [String] { groups.keys.sorted() }

    // MARK: - Sessions

    /// What a connection remembers after a successful JOIN.
    public struct Session: Sendable, Hashable {
        public var group: String
        public var storageID: String
        /// Identifies the connection, so that closing a stale one does not take the storage
        /// offline after it reconnected.
        var token: Int
        /// Whether the leader brief was already sent on this connection.
        var leaderSent = false
    }

    func storage(_ session: Session) throws(TrackerError) -> StorageRecord {
        guard let storage = groups[session.group]?.storages[session.storageID] else {
            throw TrackerError(.notJoined, "storage \(session.storageID) of \(session.group) is no longer known")
        }
        return storage
    }

    // MARK: - JOIN (81)

    /// Admits a storage (`tracker_mem_add_group_and_storage`): creates its group and record when
    /// new, checks the group-wide port, path and subdirectory counts, and moves an OFFLINE storage
    /// to ONLINE. `peerIP` is the address the connection comes from, which is also the storage
    /// id.
    public mutating func join(_ request: StorageJoinRequest, peerIP: String, now: Int64) throws(TrackerError) -> (StorageJoinResponse, Session) {
        do { try FileID.validateGroupName(request.group) } catch { throw TrackerError(.invalid, "JOIN from \(peerIP): \(error.message)") }
        guard request.storagePort > 0, request.storagePort <= 65535 else {
            throw TrackerError(.invalid, "JOIN from \(peerIP): invalid port \(request.storagePort)")
        }
        guard (1...256).contains(request.storePathCount) else {
            throw TrackerError(.invalid, "JOIN from \(peerIP): invalid store_path_count \(request.storePathCount)")
        }
        guard (1...256).contains(request.subdirCountPerPath) else {
            throw TrackerError(.invalid, "JOIN from \(peerIP): invalid subdir_count_per_path \(request.subdirCountPerPath)")
        }
        guard !peerIP.isEmpty else { throw TrackerError(.invalid, "JOIN without a peer address") }
        let id = peerIP
        let port = Int(request.storagePort)
        let paths = Int(request.storePathCount)
        let subdirs = Int(request.subdirCountPerPath)

        var group = groups[request.group]
            ?? GroupRecord(name: request.group, storagePort: port, storePathCount: paths, subdirCountPerPath: subdirs)
        let others = group.storages.values.filter { $0.id != id && $0.status != .deleted && $0.status != .ipChanged }

        if group.storagePort != port {
            guard others.allSatisfy({ $0.port == port }) else {
                throw TrackerError(.invalid, "storage \(id): port \(port) differs from port \(group.storagePort) of group \(group.name)")
            }
            group.storagePort = port
        }
        if group.storePathCount != paths {
            if others.allSatisfy({ $0.storePathCount == paths }) {
                group.storePathCount = paths
            } else if paths < group.storePathCount {
                throw TrackerError(.invalid, "storage \(id): store_path_count \(paths) is less than \(group.storePathCount) of group \(group.name)")
            }
        }
        if group.subdirCountPerPath != subdirs {
            guard others.allSatisfy({ $0.subdirCountPerPath == subdirs }) else {
                throw TrackerError(.invalid, "storage \(id): subdir_count_per_path \(subdirs) differs from \(group.subdirCountPerPath) of group \(group.name)")
            }
            group.subdirCountPerPath = subdirs
        }

        let inserted: Bool
        if var existing = group.storages[id] {
            inserted = false
            if existing.status == .deleted || existing.status == .ipChanged {
                existing.status = .initial
                group.membershipVersion += 1
            }
            group.storages[id] = existing
        } else {
            if !request.initFlag {
                let status = request.status
                if status < 0 || status == Int8(StorageStatus.deleted.rawValue) || status == Int8(StorageStatus.ipChanged.rawValue) || status == Int8(StorageStatus.none.rawValue) {
                    throw TrackerError(.badStatus, "storage \(id) of \(group.name) is unknown here and reports status \(status)")
                }
            }
            inserted = true
            group.storages[id] = StorageRecord(id: id, ip: peerIP, port: port)
            group.membershipVersion += 1
        }

        var storage = group.storages[id]!
        storage.ip = peerIP
        storage.port = port
        storage.storePathCount = paths
        storage.subdirCountPerPath = subdirs
        storage.uploadPriority = request.uploadPriority
        storage.joinTime = request.joinTime
        storage.upTime = request.upTime
        storage.version = request.version
        storage.lastHeartbeat = now
        if storage.paths.count != paths { storage.paths = Array(repeating: StorePathUsage(totalMB: 0, freeMB: 0), count: paths) }
        if storage.currentWritePath >= paths { storage.currentWritePath = 0 }
        if inserted && !request.initFlag && request.status > 0, let reported = StorageStatus(rawValue: UInt8(request.status)) {
            storage.status = reported == .active ? .online : reported
        }
        if storage.status == .offline || storage.status == .recovery { storage.status = .online }
        let token = nextConnectionToken
        nextConnectionToken += 1
        storage.connectionToken = token
        // A fresh connection gets the whole member list with its first reply.
        storage.sentMembershipVersion = -1
        let statusChanged = group.storages[id]?.status != storage.status
        group.storages[id] = storage
        if statusChanged { group.membershipVersion += 1 }
        groups[group.name] = group
        needsSave = true

        let response = StorageJoinResponse(status: storage.status.rawValue, sourceID: storage.syncSourceID ?? "")
        return (response, Session(group: group.name, storageID: id, token: token))
    }

    // MARK: - BEAT (83), DISK_USAGE (84), SYNC_REPORT (89)

    /// Records a heartbeat (and the counters, when sent) and activates the storage.
    public mutating func beat(_ request: StorageBeatRequest, session: inout Session, leader: StorageBrief, now: Int64) throws(TrackerError) -> TrackerBeatResponse {
        var storage = try storage(session)
        if let counters = request.counters {
            storage.counters = counters
        }
        storage.lastHeartbeat = now
        groups[session.group]!.storages[session.storageID] = storage
        activate(group: session.group, id: session.storageID)
        return changes(for: &session, leader: leader)
    }

    /// Records the space of each store path, updates the load-balancing cursors and activates
    /// the storage.
    public mutating func reportDiskUsage(_ report: StorageDiskUsageReport, session: inout Session, leader: StorageBrief, now: Int64) throws(TrackerError) -> TrackerBeatResponse {
        var storage = try storage(session)
        let expected = groups[session.group]!.storePathCount
        guard report.paths.count == expected else {
            throw TrackerError(.invalid, "DISK_USAGE from \(storage.id) has \(report.paths.count) paths, group \(session.group) has \(expected)")
        }
        storage.paths = report.paths
        storage.totalMB = report.paths.reduce(0) { $0 + $1.totalMB }
        storage.freeMB = report.paths.reduce(0) { $0 + $1.freeMB }
        if settings.storePath == .loadBalance {
            if storage.currentWritePath >= report.paths.count { storage.currentWritePath = 0 }
            for (index, path) in report.paths.enumerated() where path.freeMB > report.paths[storage.currentWritePath].freeMB {
                storage.currentWritePath = index
            }
        }
        groups[session.group]!.storages[session.storageID] = storage
        needsLazySave = true
        if settings.storeLookup == .loadBalance { pointAtGroupWithMostSpace() }
        activate(group: session.group, id: session.storageID)
        return changes(for: &session, leader: leader)
    }

    /// Records, for each source, how far this storage has caught up, and derives its
    /// `last_synced_timestamp` (minimum under `store_server = 0`, else maximum) from the
    /// ACTIVE sources.
    public mutating func syncReport(_ report: StorageSyncReport, session: inout Session, leader: StorageBrief, now: Int64) throws(TrackerError) -> TrackerBeatResponse {
        var storage = try storage(session)
        var group = groups[session.group]!
        var minimum: Int64 = 0
        var maximum = storage.lastSyncedTimestamp
        for entry in report.entries where entry.timestamp > 0 {
            guard entry.sourceID != storage.id, let source = group.storages[entry.sourceID], source.status == .active else { continue }
            group.syncTimestamps[entry.sourceID, default: [:]][storage.id] = entry.timestamp
            let value = Int64(entry.timestamp)
            if minimum == 0 || value < minimum { minimum = value }
            if value > maximum { maximum = value }
        }
        if settings.storeServer == .roundRobin {
            if minimum > 0 { storage.lastSyncedTimestamp = minimum }
        } else {
            storage.lastSyncedTimestamp = maximum
        }
        group.storages[storage.id] = storage
        groups[session.group] = group
        needsLazySave = true
        return changes(for: &session, leader: leader)
    }

    /// OFFLINE / ONLINE → ACTIVE (`tracker_mem_active_store_server`). Storages that are still
    /// waiting for or doing their initial sync stay where they are.
    mutating func activate(group name: String, id: String) {
        guard let status = groups[name]?.storages[id]?.status else { return }
        switch status {
        case .waitSync, .syncing, .ipChanged, .initial, .deleted, .none: return
        default:
            groups[name]!.setStatus(.active, of: id)
            if status != .active { needsSave = true }
        }
    }

    /// The flags and briefs of a beat-style reply: the leader once per connection, the member
    /// list whenever it changed since the storage last got it.
    mutating func changes(for session: inout Session, leader: StorageBrief) -> TrackerBeatResponse {
        var response = TrackerBeatResponse()
        if !session.leaderSent {
            response.leader = leader
            session.leaderSent = true
        }
        guard var group = groups[session.group], var storage = group.storages[session.storageID] else { return response }
        if storage.sentMembershipVersion != group.membershipVersion {
            response.members = group.sortedStorages.map(\.brief)
            storage.sentMembershipVersion = group.membershipVersion
            group.storages[storage.id] = storage
            groups[session.group] = group
        }
        return response
    }

    /// With `store_lookup = 2`: point the write cursor at the group with the most free space
    /// (`tracker_find_max_free_space_group`).
    mutating func pointAtGroupWithMostSpace() {
        let names = sortedGroupNames
        var best: (index: Int, free: Int64)?
        for (index, name) in names.enumerated() where !groups[name]!.writable.isEmpty {
            let free = groups[name]!.space.freeMB
            if best == nil || free > best!.free { best = (index, free) }
        }
        guard let best else { return }
        let space = groups[names[best.index]]!.space
        if settings.reservedSpace.allows(freeMB: space.freeMB, totalMB: space.totalMB) {
            currentWriteGroup = best.index
        }
    }

    // MARK: - Connection loss and heartbeat timeout

    /// The connection a storage joined on closed: ONLINE or ACTIVE becomes OFFLINE at once
    /// (`tracker_mem_offline_store_server`). A stale connection (the storage has joined again on
    /// another one since) changes nothing. Returns whether the status changed.
    @discardableResult
    public mutating func disconnected(_ session: Session) -> Bool {
        guard var storage = groups[session.group]?.storages[session.storageID], storage.connectionToken == session.token else {
            return false
        }
        storage.connectionToken = nil
        storage.upTime = 0
        groups[session.group]!.storages[session.storageID] = storage
        needsSave = true
        switch storage.status {
        case .online, .active:
            groups[session.group]!.setStatus(.offline, of: storage.id)
            return true
        default:
            return false
        }
    }

    /// Every ACTIVE storage whose last beat is more than `check_active_interval` seconds old
    /// becomes OFFLINE (`tracker_mem_check_alive`). Returns the storages changed, as
    /// `group/id` texts for the log.
    public mutating func checkAlive(now: Int64) -> [String] {
        var changed: [String] = []
        for name in sortedGroupNames {
            for storage in groups[name]!.sortedStorages where storage.status == .active && now - storage.lastHeartbeat > settings.checkActiveInterval {
                groups[name]!.setStatus(.offline, of: storage.id)
                changed.append("\(name)/\(storage.id)")
            }
        }
        if !changed.isEmpty || needsLazySave { needsSave = true }
        return changed
    }
}
