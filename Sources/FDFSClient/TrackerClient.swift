import FDFSProtocol
import NIOCore
import Synchronization

/// Tracker queries, spread over every configured tracker with failover: a connect error, a
/// timeout or an ENOENT answer moves on to the next tracker.
public struct TrackerClient: Sendable {
    let pool: ConnectionPool
    let trackers: [ServerAddress]
    private let cursor: Cursor

    final class Cursor: Sendable {
        let value = Atomic<Int>(0)
    }

    init(pool: ConnectionPool, trackers: [ServerAddress]) {
        self.pool = pool
        self.trackers = trackers
        self.cursor = Cursor()
    }

    /// Runs one request on a tracker, trying the next one after a transport failure or an ENOENT.
    /// A tracker that was just restarted answers ENOENT ("no such group", "no storage holds
    /// it") until the storages have reported to it again, while another tracker knows: its
    /// ENOENT is only final when every tracker says so.
    public func request(
        _ command: FDFSCommand, body: ByteBuffer? = nil, operation: String? = nil, maxResponse: Int = 4 << 20
    ) async throws(FDFSClientError) -> ByteBuffer {
        guard !trackers.isEmpty else {
            throw FDFSClientError(.noServer, operation: operation ?? command.description, message: "no tracker configured")
        }
        let start = cursor.value.wrappingAdd(1, ordering: .relaxed).oldValue
        var lastError: FDFSClientError?
        var notFound: FDFSClientError?
        for attempt in 0..<trackers.count {
            let tracker = trackers[(start + attempt) % trackers.count]
            let endpoint = StorageEndpoint(ip: tracker.host, port: tracker.port)
            do {
                return try await pool.withConnection(to: endpoint) { connection throws(FDFSClientError) in
                    try await connection.call(command, body: body, operation: operation, maxResponse: maxResponse)
                }
            } catch {
                if error.code == .serverStatus, error.status == .ENOENT {
                    notFound = notFound ?? error
                    continue
                }
                guard error.isTransport else { throw error }
                lastError = error
            }
        }
        throw notFound ?? lastError!
    }

    /// Decodes a reply, turning a codec error into a protocol violation for `operation`.
    func decode<T>(_ operation: String, _ body: ByteBuffer, _ decoder: (ByteBuffer) throws(FDFSProtocolError) -> T) throws(FDFSClientError) -> T {
        do {
            return try decoder(body)
        } catch {
            throw FDFSClientError(.protocolViolation, operation: operation, message: error.description)
        }
    }

    /// Where to upload: QUERY_STORE_WITHOUT_GROUP_ONE (101) or, with a group, WITH_GROUP_ONE (104).
    public func queryStore(group: String? = nil) async throws(FDFSClientError) -> StoreTarget {
        if let group {
            try validate(group: group, operation: "QUERY_STORE_WITH_GROUP_ONE")
            let body = try await request(.queryStoreWithGroupOne, body: GroupNameRequest(group: group).encoded())
            return try decode("QUERY_STORE_WITH_GROUP_ONE", body, StoreTarget.decode)
        }
        let body = try await request(.queryStoreWithoutGroupOne)
        return try decode("QUERY_STORE_WITHOUT_GROUP_ONE", body, StoreTarget.decode)
    }

    /// Every writable storage of a group (106 / 107).
    public func queryStoreAll(group: String? = nil) async throws(FDFSClientError) -> StoreTargets {
        if let group {
            try validate(group: group, operation: "QUERY_STORE_WITH_GROUP_ALL")
            let body = try await request(.queryStoreWithGroupAll, body: GroupNameRequest(group: group).encoded())
            return try decode("QUERY_STORE_WITH_GROUP_ALL", body, StoreTargets.decode)
        }
        let body = try await request(.queryStoreWithoutGroupAll)
        return try decode("QUERY_STORE_WITHOUT_GROUP_ALL", body, StoreTargets.decode)
    }

    /// A storage to read `id` from (102).
    public func queryFetch(_ id: FileID) async throws(FDFSClientError) -> StorageEndpoint {
        let body = try await request(.queryFetchOne, body: FileRequest(id).encoded())
        let targets = try decode("QUERY_FETCH_ONE", body, FetchTargets.decode)
        guard let first = targets.storages.first else {
            throw FDFSClientError(.protocolViolation, operation: "QUERY_FETCH_ONE", message: "no storage in reply")
        }
        return first
    }

    /// The storage that may change `id` (103).
    public func queryUpdate(_ id: FileID) async throws(FDFSClientError) -> StorageEndpoint {
        let body = try await request(.queryUpdate, body: FileRequest(id).encoded())
        let targets = try decode("QUERY_UPDATE", body, FetchTargets.decode)
        guard let first = targets.storages.first else {
            throw FDFSClientError(.protocolViolation, operation: "QUERY_UPDATE", message: "no storage in reply")
        }
        return first
    }

    /// Every storage that can serve `id` now (105).
    public func queryFetchAll(_ id: FileID) async throws(FDFSClientError) -> [StorageEndpoint] {
        let body = try await request(.queryFetchAll, body: FileRequest(id).encoded())
        return try decode("QUERY_FETCH_ALL", body, FetchTargets.decode).storages
    }

    /// All groups (91).
    public func listGroups() async throws(FDFSClientError) -> [GroupStat] {
        let body = try await request(.listAllGroups)
        return try decode("LIST_ALL_GROUPS", body, GroupStat.decodeList)
    }

    /// One group (90).
    public func listGroup(_ group: String) async throws(FDFSClientError) -> GroupStat {
        try validate(group: group, operation: "LIST_ONE_GROUP")
        let body = try await request(.listOneGroup, body: GroupNameRequest(group: group).encoded())
        guard let stat = try decode("LIST_ONE_GROUP", body, GroupStat.decodeList).first else {
            throw FDFSClientError(.protocolViolation, operation: "LIST_ONE_GROUP", message: "empty reply")
        }
        return stat
    }

    /// The storages of a group, or one of them (92).
    public func listStorages(group: String, storageID: String? = nil) async throws(FDFSClientError) -> [StorageStat] {
        try validate(group: group, operation: "LIST_STORAGE")
        let body = try await request(.listStorage, body: ListStorageRequest(group: group, storageID: storageID).encoded())
        return try decode("LIST_STORAGE", body, StorageStat.decodeList)
    }

    /// The storages of `group` that the tracker holds ACTIVE (LIST_STORAGE), as endpoints.
    public func activeStorages(group: String) async throws(FDFSClientError) -> [StorageEndpoint] {
        try await listStorages(group: group)
            .filter { $0.status == StorageStatus.active.rawValue && $0.storagePort > 0 }
            .map { StorageEndpoint(ip: $0.ip, port: Int($0.storagePort)) }
    }

    /// Where a read of `id` can go next once every storage in `tried` failed: QUERY_FETCH_ALL
    /// asked again, then every other ACTIVE member of the file's group. The tracker names a
    /// replica of a fresh file only once that replica reported a newer sync timestamp, so
    /// when the source dies first, QUERY_FETCH_ALL may still name only the source while a
    /// member already holds a full copy (it answers ENOENT if it does not, and the read moves
    /// on). Tracker errors count as no answer: the caller reports the storages' errors.
    public func moreReadTargets(_ id: FileID, excluding tried: [StorageEndpoint]) async -> [StorageEndpoint] {
        var targets: [StorageEndpoint] = []
        for endpoint in (try? await queryFetchAll(id)) ?? [] where !tried.contains(endpoint) && !targets.contains(endpoint) {
            targets.append(endpoint)
        }
        for endpoint in (try? await activeStorages(group: id.group)) ?? [] where !tried.contains(endpoint) && !targets.contains(endpoint) {
            targets.append(endpoint)
        }
        return targets
    }

    /// Removes an offline storage from a group (93).
    public func deleteStorage(group: String, storageID: String) async throws(FDFSClientError) {
        try validate(group: group, operation: "DELETE_STORAGE")
        _ = try await request(.deleteStorage, body: ListStorageRequest(group: group, storageID: storageID).encoded())
    }

    private func validate(group: String, operation: String) throws(FDFSClientError) {
        do {
            try FileID.validateGroupName(group)
        } catch {
            throw FDFSClientError(.invalidArgument, operation: operation, message: error.description)
        }
    }
}
