import FDFSProtocol
import Foundation

/// Keeps the registry's durable part in `<base_path>/data/tracker_state.json`: groups, storages
/// (id, address, status, join data, space, sync source and timestamps) and the write cursor.
///
/// Every save writes a temporary file, flushes it and renames it over the old one, so a crash
/// leaves either the old or the new state. Counters and runtime details (connections, cursors
/// inside groups) are not kept.
public struct RegistryStore: Sendable {
    public static let fileName = "tracker_state.json"
    public static let formatVersion = 1

    /// `<base_path>/data`.
    public let directory: String

    public init(basePath: String) {
        directory = (basePath.hasSuffix("/") ? String(basePath.dropLast()) : basePath) + "/data"
    }

    public var path: String { directory + "/" + Self.fileName }

    /// Creates `<base_path>/data` if needed.
    public func prepare() throws(TrackerStoreError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TrackerStoreError("cannot create \(directory): \(error.localizedDescription)")
        }
    }

    /// Writes the state atomically (temp file + fsync + rename).
    public func save(_ registry: TrackerRegistry) throws(TrackerStoreError) {
        let state = PersistedState(registry)
        let data: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            data = try encoder.encode(state)
        } catch {
            throw TrackerStoreError("cannot encode the state: \(error)")
        }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TrackerStoreError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var written = 0
        let ok = data.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let result = write(fd, raw.baseAddress! + written, raw.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                written += result
            }
            return fsync(fd) == 0
        }
        let failure = errno
        close(fd)
        guard ok else {
            unlink(temporary)
            throw TrackerStoreError("cannot write \(temporary): \(String(cString: strerror(failure)))")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw TrackerStoreError("cannot rename \(temporary) to \(path): \(reason)")
        }
    }

    /// Loads the saved state into `registry`. Storages that were serving come back OFFLINE
    /// until they join again. A missing file leaves the registry empty.
    public func load(into registry: inout TrackerRegistry) throws(TrackerStoreError) {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let state: PersistedState
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            state = try JSONDecoder().decode(PersistedState.self, from: data)
        } catch {
            throw TrackerStoreError("cannot read \(path): \(error)")
        }
        guard state.version == Self.formatVersion else {
            throw TrackerStoreError("\(path) has format version \(state.version), this tracker reads \(Self.formatVersion)")
        }
        state.apply(to: &registry)
    }
}

/// A failure to read or write the state file.
public struct TrackerStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The JSON shape of the state file.
struct PersistedState: Codable {
    struct Storage: Codable {
        var id: String
        var ip: String
        var port: Int
        var status: UInt8
        var rwMode: UInt8
        var version: String
        var joinTime: Int64
        var upTime: Int64
        var uploadPriority: Int64
        var storePathCount: Int
        var subdirCountPerPath: Int
        var pathTotalMB: [Int64]
        var pathFreeMB: [Int64]
        var currentWritePath: Int
        var syncSourceID: String?
        var syncUntilTimestamp: Int64
        var lastSyncedTimestamp: Int64
        var lastHeartbeat: Int64
    }

    struct Group: Codable {
        var name: String
        var storagePort: Int
        var storePathCount: Int
        var subdirCountPerPath: Int
        var storages: [Storage]
        var syncTimestamps: [String: [String: Int32]]
    }

    var version: Int
    var currentWriteGroup: Int
    var groups: [Group]

    init(_ registry: TrackerRegistry) {
        version = RegistryStore.formatVersion
        currentWriteGroup = registry.currentWriteGroup
        groups = registry.sortedGroupNames.map { name in
            let group = registry.groups[name]!
            return Group(
                name: group.name, storagePort: group.storagePort, storePathCount: group.storePathCount,
                subdirCountPerPath: group.subdirCountPerPath,
                storages: group.sortedStorages.map { s in
                    Storage(
                        id: s.id, ip: s.ip, port: s.port, status: s.status.rawValue, rwMode: s.rwMode, version: s.version,
                        joinTime: s.joinTime, upTime: s.upTime, uploadPriority: s.uploadPriority,
                        storePathCount: s.storePathCount, subdirCountPerPath: s.subdirCountPerPath,
                        pathTotalMB: s.paths.map(\.totalMB), pathFreeMB: s.paths.map(\.freeMB),
                        currentWritePath: s.currentWritePath, syncSourceID: s.syncSourceID,
                        syncUntilTimestamp: s.syncUntilTimestamp, lastSyncedTimestamp: s.lastSyncedTimestamp,
                        lastHeartbeat: s.lastHeartbeat
                    )
                },
                syncTimestamps: group.syncTimestamps
            )
        }
    }

    func apply(to registry: inout TrackerRegistry) {
        registry.groups = [:]
        for saved in groups {
            var group = GroupRecord(name: saved.name, storagePort: saved.storagePort, storePathCount: saved.storePathCount, subdirCountPerPath: saved.subdirCountPerPath)
            group.syncTimestamps = saved.syncTimestamps
            for s in saved.storages {
                var status = StorageStatus(rawValue: s.status) ?? .offline
                if [.online, .active, .recovery].contains(status) { status = .offline }
                var storage = StorageRecord(id: s.id, ip: s.ip, port: s.port, status: status)
                storage.rwMode = s.rwMode
                storage.version = s.version
                storage.joinTime = s.joinTime
                storage.upTime = 0
                storage.uploadPriority = s.uploadPriority
                storage.storePathCount = s.storePathCount
                storage.subdirCountPerPath = s.subdirCountPerPath
                storage.paths = zip(s.pathTotalMB, s.pathFreeMB).map { StorePathUsage(totalMB: $0, freeMB: $1) }
                storage.totalMB = storage.paths.reduce(0) { $0 + $1.totalMB }
                storage.freeMB = storage.paths.reduce(0) { $0 + $1.freeMB }
                storage.currentWritePath = s.currentWritePath
                storage.syncSourceID = s.syncSourceID
                storage.syncUntilTimestamp = s.syncUntilTimestamp
                storage.lastSyncedTimestamp = s.lastSyncedTimestamp
                storage.lastHeartbeat = s.lastHeartbeat
                group.storages[storage.id] = storage
            }
            registry.groups[group.name] = group
        }
        registry.currentWriteGroup = currentWriteGroup
        registry.needsSave = false
        registry.needsLazySave = false
    }
}
