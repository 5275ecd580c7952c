import FDFSClient
import FDFSProtocol
import Logging
import Synchronization

/// The groups the tracker lists (the root's children and the layout of synthetic
/// directories), and the capacity `statfs` reports: cached, and when the tracker cannot be
/// asked, the last known list from the mapping store.
final class GroupCache: Sendable {
    private struct State {
        var groups: [String: GroupInfo] = [:]
        var fetched: ContinuousClock.Instant?
        var stats: (FileSystemStats, ContinuousClock.Instant)?
    }

    private let state = Mutex(State())
    let cluster: any ClusterBackend
    let store: MappingStore
    let logger: Logger
    /// How long a listing is used without asking the tracker again.
    static let groupsLifetime: Duration = .seconds(30)
    /// An unknown group name asks the tracker again once the listing is older than this.
    static let unknownGroupRetry: Duration = .seconds(2)
    /// How long `statfs` answers from the last listing.
    static let statsLifetime: Duration = .seconds(5)

    init(cluster: any ClusterBackend, store: MappingStore, logger: Logger) {
        self.cluster = cluster
        self.store = store
        self.logger = logger
    }

    /// The groups last listed, without asking (empty before the first listing).
    var known: [String: GroupInfo] { state.withLock { $0.groups } }

    /// Groups from the tracker (cached for 30 s; the last known list when it cannot be asked).
    func groups(refresh: Bool = false) async -> [String: GroupInfo] {
        if !refresh, let cached = state.withLock({ s -> [String: GroupInfo]? in
            guard let at = s.fetched, ContinuousClock.now - at < Self.groupsLifetime else { return nil }
            return s.groups
        }) {
            return cached
        }
        var list: [GroupInfo]
        do {
            list = try await cluster.listGroups()
            try? store.saveGroups(list)
        } catch {
            logger.warning("cannot list groups (\(error)); using the last known list")
            list = (try? store.savedGroups()) ?? []
        }
        let map = Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        state.withLock { s in
            s.groups = map
            s.fetched = .now
        }
        return map
    }

    /// One group, asking the tracker when it is not known (at most every 2 s).
    func group(_ name: String) async -> GroupInfo? {
        let (known, stale) = state.withLock { s in
            (s.groups[name], s.fetched.map { ContinuousClock.now - $0 > Self.unknownGroupRetry } ?? true)
        }
        if let known { return known }
        return await groups(refresh: stale)[name]
    }

    /// Capacity of the cluster (all groups), cached for 5 s.
    func stats() async -> FileSystemStats {
        if let cached = state.withLock({ $0.stats }), ContinuousClock.now - cached.1 < Self.statsLifetime { return cached.0 }
        var total: Int64 = 0, free: Int64 = 0
        if let list = try? await cluster.listGroups() {
            for group in list {
                total += group.totalMB
                free += group.freeMB
            }
        }
        let stats = FileSystemStats(blockSize: 1 << 20, blocks: UInt64(max(total, 0)), freeBlocks: UInt64(max(free, 0)),
                                    files: 1 << 32, freeFiles: 1 << 31, nameMax: 255)
        state.withLock { $0.stats = (stats, .now) }
        return stats
    }
}
