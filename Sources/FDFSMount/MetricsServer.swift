import FDFSMetrics

/// The mount's `/metrics` endpoint: the HTTP server shared with the daemons.
public typealias MetricsServer = MetricsHTTPServer

extension FDFSFileSystem {
    /// The metrics text, counters plus the current gauges.
    public func renderMetrics() -> String {
        metrics.render(gauges: [
            ("fdfs_mount_cache_bytes", "Bytes held by the block cache on disk.", cache.usedBytes),
            ("fdfs_mount_cache_capacity_bytes", "The block cache cap.", cache.capacity),
            ("fdfs_mount_cache_blocks", "Blocks in the block cache.", Int64(cache.blockCount)),
            ("fdfs_mount_spool_bytes", "Bytes reserved in the write spool.", spool.usedBytes),
            ("fdfs_mount_fetch_memory_bytes", "Memory taken by block fetches in flight.", budget.used),
            ("fdfs_mount_buffers_live", "Block and reply buffers alive.", ByteStorage.live.load()),
            ("fdfs_mount_buffers_mapped", "Pooled buffers mapped fresh since start.", BufferPool.shared.mapped.load()),
        ])
    }
}
