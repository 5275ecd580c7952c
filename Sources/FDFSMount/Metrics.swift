import Synchronization

/// A monotonically increasing counter.
public final class Counter: Sendable {
    private let value = Atomic<Int64>(0)
    public init() {}
    public func add(_ amount: Int64 = 1) { value.wrappingAdd(amount, ordering: .relaxed) }
    public func load() -> Int64 { value.load(ordering: .relaxed) }
}

/// Counters of the mount, exported in the Prometheus text format.
public final class MountMetrics: Sendable {
    public let cacheHits = Counter()
    public let cacheMisses = Counter()
    public let cacheEvictions = Counter()
    public let cacheCorruptions = Counter()
    public let bytesFromCluster = Counter()
    public let bytesFromCache = Counter()
    public let bytesFromSpool = Counter()
    public let failovers = Counter()
    public let uploads = Counter()
    public let uploadFailures = Counter()
    public let uploadedBytes = Counter()
    public let streamedUploads = Counter()
    public let clusterDeletes = Counter()
    public let crcMismatches = Counter()
    public let prefetches = Counter()
    public let lookupsRemote = Counter()

    /// Upper bounds (seconds) of the read latency histogram.
    public static let latencyBuckets: [Double] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]
    private let latencyCounts: [Counter]
    private let latencySumMicros = Counter()
    private let latencyTotal = Counter()

    /// Gauges supplied when rendering (cache bytes, spool bytes, memory budget in use).
    public init() {
        latencyCounts = (0...Self.latencyBuckets.count).map { _ in Counter() }
    }

    public func add(_ counter: Counter, _ amount: Int64 = 1) {
        counter.add(amount)
    }

    public func observeRead(seconds: Double) {
        let index = Self.latencyBuckets.firstIndex(where: { seconds <= $0 }) ?? Self.latencyBuckets.count
        latencyCounts[index].add(1)
        latencySumMicros.add(Int64(seconds * 1_000_000))
        latencyTotal.add(1)
    }

    /// The Prometheus text exposition (format 0.0.4).
    public func render(gauges: [(String, String, Int64)] = []) -> String {
        var out = ""
        func counter(_ name: String, _ help: String, _ value: Counter) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n\(name) \(value.load())\n"
        }
        counter("fdfs_mount_cache_hits_total", "Block reads served from the local block cache.", cacheHits)
        counter("fdfs_mount_cache_misses_total", "Block reads that had to fetch from the cluster.", cacheMisses)
        counter("fdfs_mount_cache_evictions_total", "Blocks evicted from the block cache.", cacheEvictions)
        counter("fdfs_mount_cache_corruptions_total", "Cached blocks dropped because their checksum failed.", cacheCorruptions)
        counter("fdfs_mount_bytes_from_cluster_total", "Bytes downloaded from storage servers.", bytesFromCluster)
        counter("fdfs_mount_bytes_from_cache_total", "Bytes served from the block cache.", bytesFromCache)
        counter("fdfs_mount_bytes_from_spool_total", "Bytes served from the local write spool.", bytesFromSpool)
        counter("fdfs_mount_failovers_total", "Block fetches moved to another storage after a failure or stall.", failovers)
        counter("fdfs_mount_uploads_total", "Files uploaded (committed).", uploads)
        counter("fdfs_mount_upload_failures_total", "Uploads that failed.", uploadFailures)
        counter("fdfs_mount_uploaded_bytes_total", "Bytes uploaded.", uploadedBytes)
        counter("fdfs_mount_streamed_uploads_total", "Uploads streamed while the file was written (committed).", streamedUploads)
        counter("fdfs_mount_cluster_deletes_total", "Files deleted from the cluster.", clusterDeletes)
        counter("fdfs_mount_crc_mismatches_total", "Whole-file reads whose CRC32 did not match the file ID.", crcMismatches)
        counter("fdfs_mount_prefetches_total", "Blocks fetched by read-ahead.", prefetches)
        counter("fdfs_mount_remote_lookups_total", "Lookups of unknown generated names asked of the cluster.", lookupsRemote)
        for (name, help, value) in gauges {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name) \(value)\n"
        }
        out += "# HELP fdfs_mount_read_seconds Latency of READ requests.\n# TYPE fdfs_mount_read_seconds histogram\n"
        var cumulative: Int64 = 0
        for (index, bound) in Self.latencyBuckets.enumerated() {
            cumulative += latencyCounts[index].load()
            out += "fdfs_mount_read_seconds_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        cumulative += latencyCounts[Self.latencyBuckets.count].load()
        out += "fdfs_mount_read_seconds_bucket{le=\"+Inf\"} \(cumulative)\n"
        out += "fdfs_mount_read_seconds_sum \(Double(latencySumMicros.load()) / 1_000_000)\n"
        out += "fdfs_mount_read_seconds_count \(latencyTotal.load())\n"
        return out
    }
}
