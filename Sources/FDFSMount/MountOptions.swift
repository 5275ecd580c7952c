import FDFSProtocol

/// Everything `-o` can say, parsed and validated in one place.
public struct MountOptions: Sendable {
    public var readOnly = false
    public var allowOther = false
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var umask: UInt32 = 0o022
    public var stateDir: String?
    public var cacheDir: String?
    /// Hard cap of the block cache on disk, bytes.
    public var cacheSize: Int64 = 1 << 30
    /// Which fetched blocks the block cache keeps (`cache=always|reread|never`).
    public var cacheMode = CacheMode.reread
    public var blockSize: Int = 1 << 20
    /// Largest read-ahead window per open file, bytes.
    public var readahead: Int64 = 8 << 20
    /// Global memory budget for blocks being fetched, bytes.
    public var memoryBudget: Int64 = 32 << 20
    /// Kernel attribute/entry timeout for names users created (seconds).
    public var attrTimeout: Double = 1
    /// Timeout for immutable generated names and synthetic directories.
    public var immutableTimeout: Double = 3600
    public var autoUnmount = false
    public var metrics: String?
    /// Where the namespace lives (`meta=`; `$FDFS_META_URL` when not given).
    public var meta: MetadataLocation = .sqlite
    /// Seconds a statement waits for PostgreSQL before it fails with EIO (`meta_timeout=`).
    public var metaTimeout: Double = 5
    public var appendable = false
    public var keepReplaced = false
    public var spoolDir: String?
    public var spoolSize: Int64 = 4 << 30
    /// Seconds a lookup miss of a generated name is remembered.
    public var negativeTimeout: Double = 2
    /// A storage that sends nothing for this long during a block fetch is hedged by another.
    public var stallTimeout: Double = 3
    /// On a shared (PostgreSQL) namespace, a mount session without a heartbeat for this many
    /// seconds (at least 2) is dead and another mount takes its journal over.
    public var sessionTimeout: Double = 30
    /// A new file written in order is streamed to the cluster (as an appender file, turned
    /// into a normal one at close) once this many bytes are spooled; 0 turns streaming off.
    public var streamThreshold: Int64 = 16 << 20
    /// Seconds the tracker's choice of storage for uploads to a group is reused (0: ask for
    /// every upload). During a burst of small files this saves a tracker round trip per file.
    public var uploadTargetTTL: Double = 1
    /// Kernel read-ahead (bdi read_ahead_kb) set after mounting.
    public var kernelReadaheadKB: Int = 4096
    /// Write block files with O_DIRECT instead of through the page cache.
    public var directCache = false
    /// In-order READs of blocks the cache would not keep go from the storage's socket through a
    /// pipe to the kernel (`nosplice` turns it off: they go through the blocks, CRC-checked).
    public var spliceStreams = true
    /// Read-only opens of cluster files bypass the kernel page cache (`direct_io`): cold and
    /// remounted reads get faster, shared mmap gets ENODEV, repeated reads come from the block
    /// cache instead of the page cache.
    public var directReads = false
    /// Write-only opens bypass the kernel page cache (`cached_writes` turns this off).
    public var directWrites = true
    /// Serve xattrs (getxattr & co). Off saves one GETXATTR round trip per write(2).
    public var xattr = true
    /// `fsname=` and `subtype=`: how the mount is named in the mount table (nil: `fdfs`).
    public var fsname: String?
    public var subtype: String?
    /// `max_read=` as given: the largest READ the kernel sends (nil: not given).
    public var maxRead: UInt32?
    /// The largest READ whose streamed reply is spliced on to the kernel: libfuse splices a
    /// reply only when it fits its 1 MiB pipe with three pages to spare, and each slot of a
    /// pipe holds one piece of a received packet (on loopback a pipe of 256 slots holds about
    /// 241 pages), so 224 pages, 896 KiB.
    public static let splicedReadSize: UInt32 = 917_504
    /// The `max_read` the kernel and libfuse are given: `max_read=` if given, else
    /// ``splicedReadSize`` where READs are streamed (not with `nosplice` or `direct_io`), else
    /// libfuse's default (0: none).
    public var kernelMaxRead: UInt32 { maxRead ?? (spliceStreams && !directReads ? Self.splicedReadSize : 0) }
    public var debug = false

    public init() {}

    /// Options that mount(8) passes and that mean nothing (or are handled by the kernel) here.
    static let ignored: Set<String> = [
        "rw", "defaults", "auto", "noauto", "user", "users", "nouser", "_netdev", "nofail", "exec", "noexec",
        "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime", "strictatime", "nodiratime", "async", "sync",
        "default_permissions", "x-systemd.automount", "comment",
    ]

    /// The usage text of `fdfs-mount` and `mount.fdfs`.
    public static let usage = """
        usage: fdfs-mount MOUNTPOINT [-c client.conf | --tracker HOST:PORT ...] [-o OPTIONS] [-f] [-d]
               mount.fdfs SOURCE MOUNTPOINT [-o OPTIONS]      (SOURCE: client.conf path or HOST:PORT[,HOST:PORT])
               fdfs-mount export STATE_DIR|MOUNTPOINT [--json]
               fdfs-mount meta init URL                       (creates or migrates the namespace's schema)
        options (-o, comma-separated):
          ro rw allow_other uid=N gid=N umask=OOO auto_unmount appendable keep_replaced noxattr direct_io direct_cache nosplice cached_writes debug
          state_dir=DIR cache_dir=DIR cache_size=SIZE cache=always|reread|never block_size=SIZE readahead=SIZE memory=SIZE
          spool_dir=DIR spool_size=SIZE stream_threshold=SIZE attr_timeout=SEC stall_timeout=SEC upload_target_ttl=SEC kernel_readahead_kb=N
          session_timeout=SEC
          metrics=HOST:PORT (Prometheus text at http://HOST:PORT/metrics)
          meta=sqlite|postgres://USER[:PASS]@HOST[:PORT]/DB[?sslmode=disable] (SQLite/PostgreSQL, $FDFS_META_URL) meta_timeout=SEC
          fsname=NAME subtype=NAME max_read=BYTES (passed to libfuse)
        """

    /// Parses a comma-separated `-o` string (may be called repeatedly).
    public mutating func parse(_ text: String) throws(FSError) {
        for item in text.split(separator: ",") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1)
            let key = String(parts[0])
            let value = parts.count > 1 ? String(parts[1]) : nil
            func need() throws(FSError) -> String {
                guard let value, !value.isEmpty else { throw FSError(.invalid, "option \(key) needs a value") }
                return value
            }
            guard let option = MountOptionKey(rawValue: key) else {
                if Self.ignored.contains(key) || key.hasPrefix("x-") { continue }
                throw FSError(.invalid, "unknown option '\(key)'")
            }
            switch option {
            case .ro: readOnly = true
            case .rw: readOnly = false
            case .allowOther: allowOther = true
            case .uid: uid = try Self.number(need(), key)
            case .gid: gid = try Self.number(need(), key)
            case .umask:
                guard let v = UInt32(try need(), radix: 8), v <= 0o777 else { throw FSError(.invalid, "umask must be octal") }
                umask = v
            case .stateDir: stateDir = try need()
            case .cacheDir: cacheDir = try need()
            case .cacheSize: cacheSize = try Self.size(need(), key)
            case .cache:
                guard let mode = CacheMode(rawValue: try need()) else { throw FSError(.invalid, "cache= takes always, reread or never") }
                cacheMode = mode
            case .blockSize:
                let v = try Self.size(need(), key)
                guard v >= 64 << 10, v <= 16 << 20, v & (v - 1) == 0 else {
                    throw FSError(.invalid, "block_size must be a power of two between 64K and 16M")
                }
                blockSize = Int(v)
            case .readahead: readahead = try Self.size(need(), key)
            case .memory: memoryBudget = try Self.size(need(), key)
            case .attrTimeout:
                guard let v = Double(try need()), v >= 0 else { throw FSError(.invalid, "attr_timeout must be seconds") }
                attrTimeout = v
            case .sessionTimeout:
                guard let v = Double(try need()), v >= 2 else { throw FSError(.invalid, "session_timeout must be at least 2 seconds") }
                sessionTimeout = v
            case .stallTimeout:
                guard let v = Double(try need()), v > 0 else { throw FSError(.invalid, "stall_timeout must be seconds") }
                stallTimeout = v
            case .streamThreshold: streamThreshold = try Self.size(need(), key)
            case .uploadTargetTTL:
                guard let v = Double(try need()), v >= 0 else { throw FSError(.invalid, "upload_target_ttl must be seconds") }
                uploadTargetTTL = v
            case .kernelReadaheadKB: kernelReadaheadKB = Int(try Self.number(need(), key))
            case .autoUnmount: autoUnmount = true
            case .metrics: metrics = try need()
            case .meta: meta = try MetadataLocation(parsing: need())
            case .metaTimeout:
                guard let v = Double(try need()), v > 0 else { throw FSError(.invalid, "meta_timeout must be seconds") }
                metaTimeout = v
            case .appendable: appendable = true
            case .keepReplaced: keepReplaced = true
            case .spoolDir: spoolDir = try need()
            case .spoolSize: spoolSize = try Self.size(need(), key)
            case .noxattr: xattr = false
            case .directCache: directCache = true
            case .nosplice: spliceStreams = false
            case .cachedWrites: directWrites = false
            case .directIO: directReads = true
            case .debug: debug = true
            case .maxRead:
                guard let v = UInt32(try need()), v >= 4096 else { throw FSError(.invalid, "max_read takes a number of bytes, at least 4096") }
                maxRead = v
            case .fsname: fsname = try need()
            case .subtype: subtype = try need()
            }
        }
    }

    static func number(_ text: String, _ key: String) throws(FSError) -> UInt32 {
        guard let v = UInt32(text) else { throw FSError(.invalid, "option \(key) needs a number") }
        return v
    }

    /// `123`, `64K`, `16M`, `2G`, `1T` (binary units; `KB`, `KiB` and a bare `B` too).
    public static func size(_ text: String, _ key: String) throws(FSError) -> Int64 {
        var digits = text.uppercased()
        if digits.hasSuffix("IB") { digits.removeLast(2) } else if digits.hasSuffix("B"), digits.dropLast().last?.isNumber == true { digits.removeLast() }
        guard let v = FDFSConfig.parseSize(digits) else { throw FSError(.invalid, "option \(key): '\(text)' is not a size") }
        return v
    }
}
