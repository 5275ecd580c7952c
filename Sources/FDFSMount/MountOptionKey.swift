/// Every option `-o` accepts. ``MountOptions/parse(_:)`` switches over this enum exhaustively,
/// so the list cannot drift from the parser, and a test checks that README.md, SEMANTICS.md
/// and ``MountOptions/usage`` name exactly these.
public enum MountOptionKey: String, CaseIterable, Sendable {
    case ro, rw
    case allowOther = "allow_other"
    case uid, gid, umask
    case autoUnmount = "auto_unmount"
    case appendable
    case keepReplaced = "keep_replaced"
    case noxattr
    case directIO = "direct_io"
    case directCache = "direct_cache"
    /// Streamed READs go through the blocks instead of from the storage's socket through a pipe.
    case nosplice
    case cachedWrites = "cached_writes"
    case debug
    case stateDir = "state_dir"
    case cacheDir = "cache_dir"
    case cacheSize = "cache_size"
    /// Which fetched blocks the block cache keeps (``CacheMode``).
    case cache
    case blockSize = "block_size"
    case readahead, memory
    case spoolDir = "spool_dir"
    case spoolSize = "spool_size"
    case streamThreshold = "stream_threshold"
    case attrTimeout = "attr_timeout"
    case stallTimeout = "stall_timeout"
    /// Seconds without a heartbeat after which a mount's session on a shared namespace is dead.
    case sessionTimeout = "session_timeout"
    case uploadTargetTTL = "upload_target_ttl"
    case kernelReadaheadKB = "kernel_readahead_kb"
    case metrics
    /// Where the namespace lives: `sqlite` or a `postgres://` URL (``MetadataLocation``).
    case meta
    /// Seconds a statement may wait for the metadata engine before it fails with EIO.
    case metaTimeout = "meta_timeout"
    /// Passed to libfuse as they are.
    case fsname, subtype
    case maxRead = "max_read"

    /// Whether the option is written `key=value`.
    public var takesValue: Bool {
        switch self {
        case .ro, .rw, .allowOther, .autoUnmount, .appendable, .keepReplaced, .noxattr, .directIO, .directCache, .nosplice, .cachedWrites, .debug:
            false
        default:
            true
        }
    }

    /// A value the parser accepts, for tests and examples.
    public var example: String? {
        switch self {
        case .uid, .gid: "1000"
        case .umask: "022"
        case .stateDir, .cacheDir, .spoolDir: "/var/lib/fdfs"
        case .cacheSize, .spoolSize: "10G"
        case .blockSize: "1M"
        case .readahead, .streamThreshold: "16M"
        case .memory: "64M"
        case .cache: "reread"
        case .attrTimeout, .stallTimeout, .uploadTargetTTL: "1"
        case .sessionTimeout: "30"
        case .metaTimeout: "5"
        case .kernelReadaheadKB: "4096"
        case .metrics: "127.0.0.1:9100"
        case .meta: "sqlite"
        case .fsname: "fdfs"
        case .subtype: "fdfs"
        case .maxRead: "1048576"
        default: nil
        }
    }
}
