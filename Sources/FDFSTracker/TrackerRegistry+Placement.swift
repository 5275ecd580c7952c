import FDFSProtocol

/// Client queries: where to upload (QUERY_STORE, reference §2.2) and which storage serves or
/// updates a file (QUERY_FETCH / QUERY_UPDATE, §2.3 with the read-after-write rule of §6.6).
extension TrackerRegistry {
    /// QUERY_STORE_*_ONE (101 / 104): a group (the named one, or by `store_lookup`), a writable
    /// storage in it (by `store_server`) and a store path (by `store_path`).
    public mutating func queryStore(group named: String?) throws(TrackerError) -> StoreTarget {
        let name = try chooseStoreGroup(named: named)
        guard let storage = chooseWritableStorage(in: name) else {
            throw TrackerError(.notFound, "group \(name) has no writable storage")
        }
        let path = try chooseStorePath(group: name, storageID: storage.id)
        return StoreTarget(group: name, storage: storage.endpoint, storePathIndex: path)
    }

    /// QUERY_STORE_*_ALL (106 / 107): every writable storage of the chosen group; the store path
    /// is computed for the first of them.
    public mutating func queryStoreAll(group named: String?) throws(TrackerError) -> StoreTargets {
        let name = try chooseStoreGroup(named: named)
        let writable = groups[name]!.writable
        guard let first = writable.first else { throw TrackerError(.notFound, "group \(name) has no writable storage") }
        let path = try chooseStorePath(group: name, storageID: first.id)
        return StoreTargets(group: name, storages: writable.map(\.endpoint), storePathIndex: path)
    }

    /// The group an upload goes to (`tracker_deal_service_query_storage`).
    mutating func chooseStoreGroup(named: String?) throws(TrackerError) -> String {
        guard !groups.isEmpty else { throw TrackerError(.notFound, "no groups") }
        if let named {
            return try checkedStoreGroup(named)
        }
        switch settings.storeLookup {
        case .specifiedGroup:
            return try checkedStoreGroup(settings.storeGroup)
        case .roundRobin, .loadBalance:
            let names = sortedGroupNames
            if currentWriteGroup >= names.count { currentWriteGroup = 0 }
            let start = currentWriteGroup
            var chosen: String?
            var anyWritable = false
            for offset in 0..<names.count {
                let index = (start + offset) % names.count
                let group = groups[names[index]]!
                guard !group.writable.isEmpty else { continue }
                anyWritable = true
                let space = group.space
                if settings.reservedSpace.allows(freeMB: space.freeMB, totalMB: space.totalMB) {
                    chosen = names[index]
                    if offset != 0 { currentWriteGroup = index }
                    break
                }
            }
            guard let chosen else {
                throw anyWritable ? TrackerError(.noSpace, "no group has free space above the reserved space")
                    : TrackerError(.notFound, "no group has a writable storage")
            }
            if settings.storeLookup == .roundRobin {
                currentWriteGroup = (currentWriteGroup + 1) % names.count
            }
            return chosen
        }
    }

    private func checkedStoreGroup(_ name: String) throws(TrackerError) -> String {
        guard let group = groups[name] else { throw TrackerError(.notFound, "no group \(name)") }
        guard !group.writable.isEmpty else { throw TrackerError(.notFound, "group \(name) has no writable storage") }
        let space = group.space
        guard settings.reservedSpace.allows(freeMB: space.freeMB, totalMB: space.totalMB) else {
            throw TrackerError(.noSpace, "group \(name) has \(space.freeMB) MB free of \(space.totalMB) MB, not above the reserved \(settings.reservedSpace)")
        }
        return name
    }

    /// A writable storage of the group (`tracker_get_writable_storage`): round robin over the
    /// writable list, or the designated store server.
    mutating func chooseWritableStorage(in name: String) -> StorageRecord? {
        let group = groups[name]!
        let writable = group.writable
        guard !writable.isEmpty else { return nil }
        switch settings.storeServer {
        case .roundRobin:
            if writable.count == 1 { return writable[0] }
            var index = group.currentWriteServer
            if index >= writable.count { index = 0 }
            groups[name]!.currentWriteServer = index + 1 >= writable.count ? 0 : index + 1
            return writable[index]
        case .firstByIP, .firstByPriority:
            return group.storeServer(policy: settings.storeServer)
        }
    }

    /// The suggested store path: the storage's current write path if it has room, else the next
    /// one that has; with `store_path = 0` the cursor then advances.
    mutating func chooseStorePath(group name: String, storageID: String) throws(TrackerError) -> UInt8 {
        let group = groups[name]!
        guard group.storePathCount > 0 else { throw TrackerError(.notFound, "group \(name) has no store paths") }
        var storage = group.storages[storageID]!
        let count = group.storePathCount
        var index = storage.currentWritePath < count ? storage.currentWritePath : 0
        func roomy(_ path: Int) -> Bool {
            guard path < storage.paths.count else { return false }
            let usage = storage.paths[path]
            return settings.reservedSpace.allowsPath(freeMB: usage.freeMB, totalMB: usage.totalMB, pathCount: count)
        }
        if !roomy(index) {
            guard let other = (1..<max(count, 1)).lazy.map({ (index + $0) % count }).first(where: roomy) else {
                throw TrackerError(.noSpace, "no store path of \(storageID) has free space above the reserved space")
            }
            index = other
            storage.currentWritePath = other
        }
        if settings.storePath == .roundRobin {
            storage.currentWritePath = index + 1 >= count ? 0 : index + 1
        }
        groups[name]!.storages[storageID] = storage
        return UInt8(index)
    }

    // MARK: - Fetch and update

    /// Which query a file lookup answers.
    public enum FileQuery: Sendable {
        /// QUERY_FETCH_ONE (102): one storage that has the file.
        case fetchOne
        /// QUERY_UPDATE (103): the storage that must apply a change (the source when ACTIVE).
        case update
        /// QUERY_FETCH_ALL (105): every storage that has the file.
        case fetchAll
    }

    /// Routes a file request (`tracker_mem_get_storage_by_filename`). A storage other than the
    /// source serves a normal file only when the file is older than
    /// `storage_sync_file_max_delay`, or the storage reported (SYNC_REPORT) a sync timestamp
    /// past the file's, or one within a second of it once `storage_sync_file_max_time` has
    /// passed. Appender and slave files are served by their source.
    public mutating func queryFile(_ request: FileRequest, _ query: FileQuery, now: Int64) throws(TrackerError) -> FetchTargets {
        guard let group = groups[request.group] else { throw TrackerError(.notFound, "no group \(request.group)") }
        let readable = group.readable
        let writable = group.writable
        switch query {
        case .update: guard !writable.isEmpty else { throw TrackerError(.notFound, "group \(group.name) has no writable storage") }
        case .fetchOne, .fetchAll: guard !readable.isEmpty else { throw TrackerError(.notFound, "group \(group.name) has no readable storage") }
        }
        let file = try Self.describe(request.remoteFilename)
        let isSource = { (storage: StorageRecord) -> Bool in file.sourceIP != nil && storage.ip == file.sourceIP }
        let sourceByAddress = { (list: [StorageRecord]) -> StorageRecord? in
            list.first { isSource($0) && $0.port == group.storagePort }
        }
        let maxDelay = settings.storageSyncFileMaxDelay
        let maxTime = settings.storageSyncFileMaxTime
        let hasCopy = { (storage: StorageRecord) -> Bool in
            isSource(storage)
                || file.timestamp < now - maxDelay
                || storage.lastSyncedTimestamp > file.timestamp
                || (storage.lastSyncedTimestamp + 1 >= file.timestamp && now - file.timestamp > maxTime)
        }
        let fallback = group.storeServer(policy: settings.storeServer).flatMap { $0.rwMode & 4 != 0 ? $0 : nil }
        var result: [StorageRecord] = []
        switch query {
        case .fetchOne:
            if !file.isNormal || settings.downloadServer == .sourceFirst, let source = sourceByAddress(readable) {
                result = [source]
            } else if file.isNormal {
                let count = readable.count
                let start = group.currentReadServer
                for step in 0..<count {
                    let position = start + step
                    let storage = readable[position % count]
                    if hasCopy(storage) {
                        groups[group.name]!.currentReadServer = position + 1 >= count ? 0 : position + 1
                        result = [storage]
                        break
                    }
                }
            }
            if result.isEmpty, let fallback { result = [fallback] }
        case .update:
            if let source = sourceByAddress(writable) {
                result = [source]
            } else if let storage = chooseWritableStorage(in: group.name) {
                result = [storage]
            }
        case .fetchAll:
            if file.isNormal {
                result = readable.filter(hasCopy)
            } else if let source = sourceByAddress(readable) {
                result = [source]
            }
            if result.isEmpty, let fallback { result = [fallback] }
        }
        guard !result.isEmpty else { throw TrackerError(.notFound, "no storage of \(group.name) can serve \(request.remoteFilename)") }
        return FetchTargets(group: group.name, storages: result.map(\.endpoint))
    }

    /// What routing needs from a remote filename: the source IPv4 (nil for a numeric id), the
    /// timestamp, and whether it is a normal file (not appender, not slave).
    struct FileFacts {
        var sourceIP: String?
        var timestamp: Int64
        var isNormal: Bool
    }

    static func describe(_ remoteFilename: String) throws(TrackerError) -> FileFacts {
        let bytes = Array(remoteFilename.utf8)
        guard bytes.count >= 10 + 27 else { throw TrackerError(.invalid, "file name '\(remoteFilename)' is too short") }
        let generated: GeneratedName
        do {
            generated = try GeneratedName(encoded: String(decoding: bytes[10..<37], as: UTF8.self))
        } catch {
            throw TrackerError(.invalid, "file name '\(remoteFilename)' has no generated name: \(error.message)")
        }
        let length = bytes.count
        let isSlave = length > FileID.trunkRemoteFilenameLength || (length > FileID.normalRemoteFilenameLength && !generated.isTrunk)
        var sourceIP: String?
        if case .ipv4 = generated.source { sourceIP = generated.source.description }
        return FileFacts(sourceIP: sourceIP, timestamp: Int64(generated.timestamp), isNormal: !isSlave && !generated.isAppender)
    }
}
