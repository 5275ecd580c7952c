import FDFSProtocol

/// Sync coordination (reference §5.5, §6.5): how a new group member gets a source and catches up.
extension TrackerRegistry {
    /// SYNC_DEST_REQ (87) from a newly joined storage. When the group has another usable member
    /// (OFFLINE, ONLINE or ACTIVE), the first writable ACTIVE one other than the caller becomes
    /// its source with until = now, and the caller goes to WAIT_SYNC. Otherwise there is nothing
    /// to copy: the caller becomes ONLINE and the reply is empty.
    public mutating func syncDestRequest(session: Session, now: Int64) throws(TrackerError) -> StorageSyncSource? {
        let storage = try storage(session)
        var group = groups[session.group]!
        let candidates = group.storages.values.filter {
            $0.id != storage.id && [.offline, .online, .active].contains($0.status)
        }
        if candidates.isEmpty {
            group.setStatus(.online, of: storage.id)
            groups[session.group] = group
            needsSave = true
            return nil
        }
        guard let source = group.writable.first(where: { $0.id != storage.id }) else {
            throw TrackerError(.notFound, "group \(group.name) has members but none is writable to be the sync source of \(storage.id)")
        }
        group.storages[storage.id]!.syncSourceID = source.id
        group.storages[storage.id]!.syncUntilTimestamp = now
        group.setStatus(.waitSync, of: storage.id)
        groups[session.group] = group
        needsSave = true
        return StorageSyncSource(sourceID: source.id, untilTimestamp: now)
    }

    /// SYNC_NOTIFY (88): the storage tells every tracker its persisted source. An empty source
    /// means the initial sync is not needed or done: INIT, WAIT_SYNC and SYNCING become ONLINE.
    /// Otherwise INIT becomes WAIT_SYNC and, when the tracker had no source recorded or an older
    /// `until`, it adopts this one (ENOENT when it is unknown, DELETED or IP_CHANGED).
    public mutating func syncNotify(_ notice: StorageSyncSource, session: Session) throws(TrackerError) {
        let storage = try storage(session)
        var group = groups[session.group]!
        if notice.sourceID.isEmpty {
            if [.initial, .waitSync, .syncing].contains(storage.status) {
                group.setStatus(.online, of: storage.id)
                groups[session.group] = group
                needsSave = true
            }
            return
        }
        if storage.status == .initial {
            group.setStatus(.waitSync, of: storage.id)
            needsSave = true
        }
        // A newer `until` is a new initial sync (the storage was wiped and asked another
        // tracker for a source): the old source and time are stale, and a source asking this
        // tracker (SYNC_SRC_REQ) would go on from its old mark and never send the old files.
        if storage.syncSourceID == nil || notice.untilTimestamp > storage.syncUntilTimestamp {
            guard let source = group.storages[notice.sourceID], source.status != .deleted, source.status != .ipChanged else {
                groups[session.group] = group
                throw TrackerError(.notFound, "sync source \(notice.sourceID) of \(storage.id) is unknown or deleted")
            }
            group.storages[storage.id]!.syncSourceID = source.id
            group.storages[storage.id]!.syncUntilTimestamp = notice.untilTimestamp
            needsSave = true
        }
        groups[session.group] = group
    }

    /// SYNC_SRC_REQ (86): which storage is the sync source of `destinationID`? Every member asks
    /// this when it starts a sync thread towards a peer without a mark file; the one that finds
    /// itself named replays its whole binlog. nil (empty reply) when there is no usable source;
    /// a source that is gone (unknown, DELETED, IP_CHANGED) is forgotten.
    ///
    /// A destination in WAIT_SYNC has a source somewhere: with several trackers, the one that
    /// answered its SYNC_DEST_REQ knows it, and this one may not know it yet (the destination's
    /// SYNC_NOTIFY failed here while the source was unknown to this tracker), or the source has
    /// not come back to OFFLINE/ONLINE/ACTIVE here yet. An empty reply would make every member
    /// conclude it is not the source and wait for good, so this answers EAGAIN instead: the
    /// asker retries, or asks another tracker.
    public mutating func syncSourceRequest(_ request: StorageSyncSourceRequest) throws(TrackerError) -> StorageSyncSource? {
        guard var group = groups[request.group] else { throw TrackerError(.notFound, "SYNC_SRC_REQ: no group \(request.group)") }
        guard let destination = group.storages[request.destinationID] else {
            throw TrackerError(.notFound, "SYNC_SRC_REQ: no storage \(request.destinationID) in \(request.group)")
        }
        guard ![.initial, .deleted, .ipChanged].contains(destination.status) else {
            throw TrackerError(.notFound, "SYNC_SRC_REQ: storage \(destination.id) is \(destination.status.name)")
        }
        let source = destination.syncSourceID.flatMap { group.storages[$0] }
        if let source, [.offline, .online, .active, .recovery].contains(source.status) {
            return StorageSyncSource(sourceID: source.id, untilTimestamp: destination.syncUntilTimestamp)
        }
        if destination.syncSourceID != nil, source == nil || source?.status == .deleted || source?.status == .ipChanged {
            group.storages[destination.id]!.syncSourceID = nil
            groups[request.group] = group
            needsSave = true
        }
        if destination.status == .waitSync {
            let known = source.map { "its source \($0.id) is \($0.status.name) here" } ?? "this tracker does not know its source yet"
            throw TrackerError(.notYet, "SYNC_SRC_REQ: storage \(destination.id) waits for a sync source; \(known)")
        }
        return nil
    }

    /// SYNC_DEST_QUERY (79): the caller's own source, if any.
    public func syncDestQuery(session: Session) throws(TrackerError) -> StorageSyncSource? {
        let storage = try storage(session)
        guard let sourceID = storage.syncSourceID else { return nil }
        return StorageSyncSource(sourceID: sourceID, untilTimestamp: storage.syncUntilTimestamp)
    }

    /// REPORT_STATUS (76): a sync source moves its destination forward (WAIT_SYNC → SYNCING →
    /// OFFLINE), or reports it DELETED / IP_CHANGED (`tracker_mem_sync_storages`). Statuses
    /// only move up; a storage that is INIT, ONLINE, ACTIVE or RECOVERY here is left alone, and
    /// an unknown storage is added unless it is deleted, online or active.
    public mutating func reportStatus(_ request: StorageReportStatusRequest) throws(TrackerError) {
        guard groups[request.group] != nil else { throw TrackerError(.notFound, "REPORT_STATUS: no group \(request.group)") }
        applyReportedStatuses([request.storage], group: request.group)
    }

    /// REPLICA_CHG (85): a storage's view of its group. The leader keeps its own view, and this
    /// tracker is always the leader, so the report is only checked.
    public func replicaChange(_ request: StorageReplicaChangeRequest, session: Session) throws(TrackerError) {
        _ = try storage(session)
        guard request.storages.count <= 32 else {
            throw TrackerError(.invalid, "REPLICA_CHG with \(request.storages.count) storages, more than 32")
        }
    }

    mutating func applyReportedStatuses(_ briefs: [StorageBrief], group name: String) {
        guard var group = groups[name] else { return }
        for brief in briefs {
            guard let reported = StorageStatus(rawValue: brief.status), reported != .none else { continue }
            if let current = group.storages[brief.id]?.status {
                if current == reported || [.online, .active, .recovery].contains(current) { continue }
                // With several trackers a source may report its destination SYNCING or OFFLINE
                // here before the destination's own SYNC_NOTIFY has moved it out of INIT; the
                // report is newer news, and ignoring it would leave the storage waiting forever.
                if current == .initial, ![.waitSync, .syncing, .offline].contains(reported) { continue }
                if reported == .deleted || reported == .ipChanged || reported.rawValue > current.rawValue {
                    group.setStatus(reported, of: brief.id)
                    needsSave = true
                }
            } else if ![.deleted, .ipChanged, .active, .online].contains(reported), !brief.ip.isEmpty, brief.port > 0 {
                group.storages[brief.id] = StorageRecord(id: brief.id, ip: brief.ip, port: Int(brief.port), status: reported)
                group.membershipVersion += 1
                needsSave = true
            }
        }
        groups[name] = group
    }

    /// CHANGE_STATUS (59): align with the status another tracker (the leader) holds. A change
    /// between two available statuses (OFFLINE, ONLINE, ACTIVE) is ignored; ONLINE and ACTIVE
    /// are stored as OFFLINE.
    public mutating func changeStatus(_ request: StorageChangeStatusRequest, session: Session) throws(TrackerError) {
        let storage = try storage(session)
        guard var newStatus = StorageStatus(rawValue: request.status) else {
            throw TrackerError(.invalid, "CHANGE_STATUS to unknown status \(request.status)")
        }
        let available: Set<StorageStatus> = [.offline, .online, .active]
        if storage.status == newStatus || (available.contains(storage.status) && available.contains(newStatus)) { return }
        if newStatus == .online || newStatus == .active { newStatus = .offline }
        groups[session.group]!.setStatus(newStatus, of: storage.id)
        needsSave = true
    }
}
