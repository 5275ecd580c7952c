import CoreMetrics
import FDFSMetrics
import Synchronization

/// A monotonically increasing counter of the mount: a swift-metrics counter (exported) plus
/// the running total, which tests and the mount read back with ``load()``.
public final class Counter: Sendable {
    private let value = Atomic<Int64>(0)
    private let exported: CoreMetrics.Counter?

    /// A counter that is not exported (tests).
    public init() { exported = nil }

    init(label: String, factory: any MetricsFactory) {
        exported = CoreMetrics.Counter(label: label, factory: factory)
    }

    public func add(_ amount: Int64 = 1) {
        value.wrappingAdd(amount, ordering: .relaxed)
        exported?.increment(by: amount)
    }

    public func load() -> Int64 { value.load(ordering: .relaxed) }
}

/// Counters of the mount, kept through swift-metrics in a Prometheus registry of their own and
/// exported in the Prometheus text format.
public final class MountMetrics: Sendable {
    public let cacheHits: Counter
    public let cacheMisses: Counter
    public let cacheEvictions: Counter
    public let cacheCorruptions: Counter
    public let bytesFromCluster: Counter
    /// READs streamed from a storage's socket through a pipe (not through the blocks).
    public let streamedReads: Counter
    /// Streamed READs whose bytes went through memory because the pipe filled up first.
    public let streamedReadsCopied: Counter
    /// DOWNLOAD_FILE requests streamed READs took their bytes from: one per open file whose
    /// READs share one download, one per READ downloaded on its own.
    public let streamedDownloads: Counter
    public let bytesFromCache: Counter
    public let bytesFromSpool: Counter
    public let failovers: Counter
    public let uploads: Counter
    /// Empty files committed without an upload (metadata only).
    public let emptyCommits: Counter
    public let uploadFailures: Counter
    public let uploadedBytes: Counter
    public let streamedUploads: Counter
    public let clusterDeletes: Counter
    public let crcMismatches: Counter
    public let prefetches: Counter
    public let lookupsRemote: Counter

    /// Upper bounds (seconds) of the read latency histogram.
    public static let latencyBuckets: [Double] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]
    static let readLatencyLabel = "fdfs_mount_read_seconds"

    /// The registry all of these live in.
    public let registry: MetricsRegistry
    private let readLatency: CoreMetrics.Timer

    public init() {
        let registry = MetricsRegistry(durationBuckets: [
            Self.readLatencyLabel: Self.latencyBuckets.map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) },
        ])
        self.registry = registry
        let factory = registry.factory
        func counter(_ name: String) -> Counter { Counter(label: name, factory: factory) }
        cacheHits = counter("fdfs_mount_cache_hits_total")
        cacheMisses = counter("fdfs_mount_cache_misses_total")
        cacheEvictions = counter("fdfs_mount_cache_evictions_total")
        cacheCorruptions = counter("fdfs_mount_cache_corruptions_total")
        bytesFromCluster = counter("fdfs_mount_bytes_from_cluster_total")
        streamedReads = counter("fdfs_mount_streamed_reads_total")
        streamedReadsCopied = counter("fdfs_mount_streamed_reads_copied_total")
        streamedDownloads = counter("fdfs_mount_streamed_downloads_total")
        bytesFromCache = counter("fdfs_mount_bytes_from_cache_total")
        bytesFromSpool = counter("fdfs_mount_bytes_from_spool_total")
        failovers = counter("fdfs_mount_failovers_total")
        uploads = counter("fdfs_mount_uploads_total")
        emptyCommits = counter("fdfs_mount_empty_commits_total")
        uploadFailures = counter("fdfs_mount_upload_failures_total")
        uploadedBytes = counter("fdfs_mount_uploaded_bytes_total")
        streamedUploads = counter("fdfs_mount_streamed_uploads_total")
        clusterDeletes = counter("fdfs_mount_cluster_deletes_total")
        crcMismatches = counter("fdfs_mount_crc_mismatches_total")
        prefetches = counter("fdfs_mount_prefetches_total")
        lookupsRemote = counter("fdfs_mount_remote_lookups_total")
        readLatency = CoreMetrics.Timer(label: Self.readLatencyLabel, factory: factory)
    }

    public func add(_ counter: Counter, _ amount: Int64 = 1) {
        counter.add(amount)
    }

    public func observeRead(seconds: Double) {
        readLatency.recordNanoseconds(Int64(seconds * 1_000_000_000))
    }

    /// The Prometheus text exposition (format 0.0.4): the registry's counters and read
    /// latency histogram, then `gauges` (name, help, value), which are read from the cache,
    /// spool and budgets at each call and written as integers.
    public func render(gauges: [(String, String, Int64)] = []) -> String {
        var out = String(decoding: registry.exposition(), as: UTF8.self)
        for (name, help, value) in gauges {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name) \(value)\n"
        }
        return out
    }
}
