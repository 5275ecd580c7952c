import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The filesystem core: namespace, attributes, reads through a ``FileReader`` per handle
/// (Read/), writes through the spool, upload and commit. No kernel involved: the FUSE
/// adapter calls these methods, and so do tests. Each concern keeps its own state behind its
/// own lock: ``HandleTable``, ``WriteTable``, ``NegativeCache``, ``GroupCache``,
/// ``AppenderVersions``, ``BackgroundWork``; the namespace lives in the ``MappingStore``.
/// Operations that may be answered without the cluster return an ``Answer``.
public final class FDFSFileSystem: Sendable {
    public let options: MountOptions
    public let cluster: any ClusterBackend
    public let store: MappingStore
    public let cache: BlockCache
    public let spool: Spool
    public let fetcher: BlockFetcher
    /// Blocks for every reader: the cache, fetches in flight, read-ahead issuing.
    public let blocks: BlockStore
    public let budget: MemoryBudget
    public let metrics: MountMetrics
    public let stateDir: String
    let logger: Logger
    let startTime: Int64
    /// What other mounts on the same PostgreSQL namespace changed (see
    /// FileSystem+Invalidations.swift); the FUSE adapter tells the kernel. Never yields on SQLite.
    public let invalidations: AsyncStream<Invalidation>
    let invalidationSink: AsyncStream<Invalidation>.Continuation

    /// Open files and directory listings (HandleTable.swift).
    let handles = HandleTable()
    /// Files being written (Write/WriteTable.swift).
    let writes = WriteTable()
    /// Generated names the cluster recently said are missing.
    let negative: NegativeCache
    /// Groups from the tracker and the cluster's capacity.
    let groupCache: GroupCache
    /// Versions seen of appender files opened for reading.
    let appenderVersions = AppenderVersions()
    /// The state of retries, metadata writes and deletions (FileSystem+Background.swift).
    let backgroundWork = BackgroundWork()
    /// Dead sessions taken over (FileSystem+Takeover.swift).
    let takeovers = Takeovers()
    /// Hears other mounts' changes (PostgreSQL only), from ``start()`` to ``stop()``
    /// (FileSystem+Invalidations.swift).
    let listening = Mutex<(listener: NamespaceListener?, stopped: Bool)>((nil, false))

    /// Opens (or creates) the state directory, the mapping store, the block cache and the
    /// spool. Call ``start()`` before serving requests.
    public init(options: MountOptions, cluster: any ClusterBackend, stateDir: String, logger: Logger = Logger(label: "fdfs.mount"), metrics: MountMetrics = MountMetrics()) throws(FSError) {
        self.options = options
        self.cluster = cluster
        self.stateDir = stateDir
        self.logger = logger
        self.metrics = metrics
        self.startTime = POSIX.nowNanoseconds()
        let (invalidations, invalidationSink) = AsyncStream.makeStream(of: Invalidation.self, bufferingPolicy: .bufferingNewest(4096))
        self.invalidations = invalidations
        self.invalidationSink = invalidationSink
        try POSIX.mkdirs(stateDir)
        let session = options.meta == .sqlite ? "" : Self.loadSessionID(stateDir: stateDir)
        self.store = try MappingStore(location: options.meta, stateDir: stateDir, session: session, cacheTTL: options.attrTimeout,
                                       timeout: options.metaTimeout, logger: logger)
        self.cache = try BlockCache(dir: options.cacheDir ?? stateDir + "/cache", capacity: options.cacheSize, blockSize: options.blockSize, directIO: options.directCache, metrics: metrics, logger: logger)
        self.spool = try Spool(dir: options.spoolDir ?? stateDir + "/spool", capacity: options.spoolSize)
        self.budget = MemoryBudget(limit: options.memoryBudget)
        self.fetcher = BlockFetcher(cluster: cluster, metrics: metrics, logger: logger, stallTimeout: options.stallTimeout)
        self.blocks = BlockStore(cache: cache, fetcher: fetcher, budget: budget, metrics: metrics, logger: logger, blockSize: options.blockSize, mode: options.cacheMode,
                                 splicesStreams: options.spliceStreams)
        self.negative = NegativeCache(timeout: .milliseconds(Int64(options.negativeTimeout * 1000)))
        self.groupCache = GroupCache(cluster: cluster, store: store, logger: logger)
    }

    /// Capacity of the cluster (cached for 5 s).
    public func statfs() async -> FileSystemStats {
        await groupCache.stats()
    }
}

