import FDFSProtocol

/// How the tracker picks a group for uploads without a group (`store_lookup`, reference §2.2).
public enum StoreLookup: Int, Sendable, Hashable {
    case roundRobin = 0
    case specifiedGroup = 1
    case loadBalance = 2
}

/// How the tracker picks a storage inside a group (`store_server`).
public enum StoreServerPolicy: Int, Sendable, Hashable {
    case roundRobin = 0
    case firstByIP = 1
    case firstByPriority = 2
}

/// How the tracker suggests a store path (`store_path`).
public enum StorePathPolicy: Int, Sendable, Hashable {
    case roundRobin = 0
    case loadBalance = 2
}

/// Which storage serves downloads (`download_server`).
public enum DownloadServerPolicy: Int, Sendable, Hashable {
    case roundRobin = 0
    case sourceFirst = 1
}

/// `reserved_storage_space`: an absolute amount or a share of the total.
public enum ReservedSpace: Sendable, Hashable, CustomStringConvertible {
    case megabytes(Int64)
    /// A fraction in (0, 1), from a value such as `20%`.
    case ratio(Double)

    /// FastDFS's default when the key is absent.
    public static let defaultValue = ReservedSpace.megabytes(1024)

    /// Parses `20%`, `1024MB`, `10G`, `4096` (bytes).
    public static func parse(_ text: String) -> ReservedSpace? {
        if text.hasSuffix("%") {
            guard let percent = Double(text.dropLast()), percent > 0, percent < 100 else { return nil }
            return .ratio(percent / 100)
        }
        guard let bytes = FDFSConfig.parseSize(text) else { return nil }
        return .megabytes(bytes / (1 << 20))
    }

    /// Whether a group or storage with this space has room (`fdfs_check_reserved_space`).
    public func allows(freeMB: Int64, totalMB: Int64) -> Bool {
        switch self {
        case let .megabytes(reserved): return freeMB > reserved
        case let .ratio(ratio): return totalMB > 0 && Double(freeMB) / Double(totalMB) > ratio
        }
    }

    /// The per-path test (`fdfs_check_reserved_space_path`): absolute reserve split evenly.
    public func allowsPath(freeMB: Int64, totalMB: Int64, pathCount: Int) -> Bool {
        switch self {
        case let .megabytes(reserved): return freeMB > reserved / Int64(max(pathCount, 1))
        case .ratio: return allows(freeMB: freeMB, totalMB: totalMB)
        }
    }

    /// The reserved amount in MB for a storage or group of this total size.
    public func reservedMB(totalMB: Int64) -> Int64 {
        switch self {
        case let .megabytes(reserved): return reserved
        case let .ratio(ratio): return Int64(Double(totalMB) * ratio)
        }
    }

    /// As the C tracker prints it in PARAMETER_REQ: `1024MB` or `20.00%`.
    public var description: String {
        switch self {
        case let .megabytes(reserved): return "\(reserved)MB"
        case let .ratio(ratio):
            let hundredths = Int((ratio * 10000).rounded())
            let fraction = hundredths % 100
            return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)%"
        }
    }
}

/// Everything the tracker takes from tracker.conf (reference §8.4), with the C code's defaults
/// where the file says nothing.
public struct TrackerSettings: Sendable {
    public var disabled = false
    /// Empty: every address.
    public var bindAddress = ""
    public var port = 22122
    public var basePath = "/opt/fastdfs"
    /// Largest request body buffered, and the largest reply (`max_buff_size`, at least 64 KB).
    public var maxBufferSize = 128 * 1024
    public var storeLookup = StoreLookup.roundRobin
    public var storeGroup = ""
    public var storeServer = StoreServerPolicy.roundRobin
    public var storePath = StorePathPolicy.roundRobin
    public var downloadServer = DownloadServerPolicy.roundRobin
    public var reservedSpace = ReservedSpace.defaultValue
    public var allowHosts = AllowHosts.everyone
    /// Most simultaneous connections; more are closed right after accept.
    public var maxConnections = 1024
    /// Seconds a client may take to send a complete request once the tracker waits for one
    /// (`network_timeout`); idle, half-sent and trickled requests are closed after it.
    /// Connections of joined storages are exempt: their heartbeats are checked instead.
    public var networkTimeout = 30
    /// Seconds without a beat after which an ACTIVE storage becomes OFFLINE.
    public var checkActiveInterval: Int64 = 100
    public var storageSyncFileMaxDelay: Int64 = 86400
    public var storageSyncFileMaxTime: Int64 = 300
    /// 16 (IPv4-sized replies, `auto`) or 46 (`IPv6`).
    public var responseIPAddressSize = 16
    /// Answer LIST_* with the ≤ 6.10 records (105-byte groups, 612-byte storages).
    public var classicListing = false
    public var storageIPChangedAutoAdjust = true
    public var storeSlaveFileUseLink = false
    /// Values passed through to storages in PARAMETER_REQ but not used by this tracker.
    public var passThrough: [String: String] = [:]
    /// Port of the Prometheus `/metrics` HTTP endpoint (`metrics_port`, our extension); 0 = off.
    public var metricsPort = 0
    /// `log_level` from the file (the executable maps it to a swift-log level).
    public var logLevel = "info"
    /// Settings that were read but are ignored, as `file:line: why` texts for the log.
    public var warnings: [String] = []

    public init() {}

    /// The wire layouts this configuration selects.
    public var profile: WireProfile {
        WireProfile(ipFieldWidth: responseIPAddressSize, classicListing: classicListing, fetchAllWithPorts: true)
    }

    /// Every key this tracker knows, used or only passed on or accepted and ignored.
    public static let knownKeys: Set<String> = [
        "disabled", "bind_addr", "port", "address_family", "response_ip_addr_size", "connect_timeout",
        "network_timeout", "use_io_uring", "use_send_zc", "base_path", "max_connections", "accept_threads",
        "work_threads", "min_buff_size", "max_buff_size", "store_lookup", "store_group", "store_server",
        "store_path", "download_server", "reserved_storage_space", "log_level", "run_by_group", "run_by_user",
        "allow_hosts", "check_active_interval", "thread_stack_size", "storage_ip_changed_auto_adjust",
        "storage_sync_file_max_delay", "storage_sync_file_max_time", "use_trunk_file", "slot_min_size",
        "slot_max_size", "trunk_alloc_alignment_size", "trunk_free_space_merge", "delete_unused_trunk_files",
        "trunk_file_size", "trunk_create_file_advance", "trunk_create_file_time_base",
        "trunk_create_file_interval", "trunk_create_file_space_threshold", "trunk_init_check_occupying",
        "trunk_init_reload_from_binlog", "trunk_compress_binlog_min_interval", "trunk_compress_binlog_interval",
        "trunk_compress_binlog_time_base", "trunk_binlog_max_backups", "use_storage_id", "storage_ids_filename",
        "id_type_in_filename", "trust_storage_server_id", "store_slave_file_use_link", "use_connection_pool",
        "connection_pool_max_idle_time", "sync_log_buff_interval", "log_file_rotate_everyday",
        "log_file_rotate_time", "log_file_compress_old", "log_file_compress_days_before",
        "log_file_rotate_on_size", "log_file_keep_days", "log_file_delete_old_time",
        "http.server_port", "http.check_alive_interval", "http.check_alive_type", "http.check_alive_uri",
        "classic_listing", "metrics_port",
    ]

    /// Keys in the file that this tracker does not know (the caller logs a warning for each).
    public static func unknownEntries(in config: FDFSConfig) -> [FDFSConfig.Entry] {
        config.entries.filter { !knownKeys.contains($0.key) }
    }

    /// Reads a tracker.conf. A bad value is an error naming its file and line.
    public init(config: FDFSConfig) throws(FDFSProtocolError) {
        self.init()
        disabled = try config.bool("disabled", default: false)
        bindAddress = config.string("bind_addr") ?? ""
        port = try Self.ranged(config, "port", default: 22122, 1...65535)
        if let base = config.entry("base_path") {
            guard !base.value.isEmpty else { throw config.bad(base, "a directory") }
            basePath = base.value
        }
        if let entry = config.entry("max_buff_size"), !entry.value.isEmpty {
            let size = try config.size("max_buff_size", default: 128 * 1024)
            guard size >= 64 * 1024, size <= 64 * 1024 * 1024 else { throw config.bad(entry, "a size from 64KB to 64MB") }
            maxBufferSize = Int(size)
        }
        maxConnections = try Self.ranged(config, "max_connections", default: 1024, 1...1_000_000)
        networkTimeout = try Self.ranged(config, "network_timeout", default: 30, 1...3600)
        storeLookup = try Self.choice(config, "store_lookup", default: .roundRobin)
        storeGroup = config.string("store_group") ?? ""
        if storeLookup == .specifiedGroup {
            let entry = config.entry("store_group")
            do { try FileID.validateGroupName(storeGroup) } catch {
                if let entry { throw config.bad(entry, "a group name ([A-Za-z0-9]{1,16}), needed by store_lookup = 1") }
                throw FDFSProtocolError(.invalidConfig, "\(config.entry("store_lookup")?.file ?? "config"): store_lookup = 1 needs store_group")
            }
        }
        storeServer = try Self.choice(config, "store_server", default: .roundRobin)
        storePath = try Self.choice(config, "store_path", default: .roundRobin)
        downloadServer = try Self.choice(config, "download_server", default: .roundRobin)
        if let entry = config.entry("reserved_storage_space") {
            guard let value = ReservedSpace.parse(entry.value) else {
                throw config.bad(entry, "a size (e.g. 1G) or a percentage between 0% and 100%")
            }
            reservedSpace = value
        }
        let hosts = config.entries.filter { $0.key == "allow_hosts" }
        do { allowHosts = try AllowHosts(values: hosts.map(\.value)) } catch {
            let entry = hosts.first { (try? AllowHosts(values: [$0.value])) == nil } ?? hosts[0]
            throw FDFSProtocolError(.invalidConfig, "\(entry.file):\(entry.line): \(error.description)")
        }
        checkActiveInterval = Int64(try Self.ranged(config, "check_active_interval", default: 100, 1...86400 * 30))
        storageSyncFileMaxDelay = Int64(try Self.ranged(config, "storage_sync_file_max_delay", default: 86400, 1...Int(Int32.max)))
        storageSyncFileMaxTime = Int64(try Self.ranged(config, "storage_sync_file_max_time", default: 300, 1...Int(Int32.max)))
        if let entry = config.entry("response_ip_addr_size") {
            switch entry.value.lowercased() {
            case "", "auto", "ipv4", "16": responseIPAddressSize = 16
            case "ipv6", "46": responseIPAddressSize = 46
            default: throw config.bad(entry, "auto, IPv4 or IPv6")
            }
        }
        classicListing = try config.bool("classic_listing", default: false)
        metricsPort = try Self.ranged(config, "metrics_port", default: 0, 0...65535)
        storageIPChangedAutoAdjust = try config.bool("storage_ip_changed_auto_adjust", default: true)
        storeSlaveFileUseLink = try config.bool("store_slave_file_use_link", default: false)
        if let entry = config.entry("use_storage_id"), try config.bool("use_storage_id", default: false) {
            throw config.bad(entry, "supported: storage ids (use_storage_id = true) are not implemented by this tracker; use false")
        }
        if let level = config.string("log_level"), !level.isEmpty { logLevel = level.lowercased() }
        if let entry = config.entry("use_trunk_file"), try config.bool("use_trunk_file", default: false) {
            warnings.append("\(entry.file):\(entry.line): use_trunk_file = \(entry.value) is ignored: trunk files are not supported, storages are told use_trunk_file=0")
        }
        for key in TrackerParameterDefaults.passedThroughKeys {
            guard let entry = config.entry(key), !entry.value.isEmpty else { continue }
            guard let value = TrackerParameterDefaults.normalize(key: key, value: entry.value) else {
                throw config.bad(entry, "a valid value for \(key)")
            }
            passThrough[key] = value
        }
    }

    private static func ranged(_ config: FDFSConfig, _ key: String, default fallback: Int, _ range: ClosedRange<Int>) throws(FDFSProtocolError) -> Int {
        let value = try config.int(key, default: fallback)
        if let entry = config.entry(key), !entry.value.isEmpty, !range.contains(value) {
            throw config.bad(entry, "an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    private static func choice<T: RawRepresentable>(_ config: FDFSConfig, _ key: String, default fallback: T) throws(FDFSProtocolError) -> T where T.RawValue == Int {
        let value = try config.int(key, default: fallback.rawValue)
        guard let choice = T(rawValue: value) else {
            throw config.bad(config.entry(key)!, "one of the documented values for \(key)")
        }
        return choice
    }
}
