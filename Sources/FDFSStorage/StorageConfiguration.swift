import FDFSProtocol
import Foundation

/// Settings of `fdfs-storaged`, read from FastDFS's own storage.conf (reference §8.5) plus the
/// `http.*` keys of our built-in HTTP server (directly or through `#include http.conf`).
public struct StorageConfiguration: Sendable {
    public var group = "group1"
    /// Address to listen on (and to report as ours when set); nil = all addresses.
    public var bindAddress: String?
    public var port = 23000
    public var basePath = "/opt/fastdfs"
    public var storePaths: [String] = []
    public var subdirCountPerPath = 256
    public var trackers: [ServerAddress] = []
    public var heartBeatInterval = 30
    public var statReportInterval = 300
    public var syncWaitMsec = 100
    public var buffSize = 256 * 1024
    public var allowHosts = AllowHosts.everyone
    /// 0 round robin, 1 random hash (reference §4.5).
    public var fileDistributePathMode = 0
    public var fileDistributeRotateCount = 100
    public var connectTimeout = 10
    public var networkTimeout = 30
    /// Client connections open at once on the storage port (C default 256); more are closed
    /// as they arrive. Connections of group members replicating count too.
    public var maxConnections = 256
    public var uploadPriority = 10
    /// Records between two mark-file writes of a sync task.
    public var writeMarkFileFreq = 500
    /// Port of the built-in HTTP server; 0 disables it.
    public var httpPort = 8888
    /// Port of the Prometheus `/metrics` endpoint (`metrics_port`, our extension); 0 = off.
    public var metricsPort = 0
    /// Anti-steal token check of the HTTP server, when enabled.
    public var antiSteal: AntiStealSettings?
    /// Content-Type for extensions without a known type.
    public var httpDefaultContentType = "application/octet-stream"
    /// A file not yet replicated here is older than this: answer 404 instead of redirecting.
    public var storageSyncFileMaxDelay = 86400
    /// Problems that do not stop the server (unknown keys), for the log.
    public var warnings: [String] = []

    public init() {}

    /// Anti-steal token settings (`http.anti_steal.*`, reference §7.2).
    public struct AntiStealSettings: Sendable, Hashable {
        public var secretKey: String
        public var tokenTTL: Int
        public var checkFailFile: String?
        public init(secretKey: String, tokenTTL: Int = 600, checkFailFile: String? = nil) {
            self.secretKey = secretKey
            self.tokenTTL = tokenTTL
            self.checkFailFile = checkFailFile
        }
    }

    /// Keys of the C storage.conf and http.conf that we accept without using them.
    static let ignoredKeys: Set<String> = [
        "disabled", "client_bind", "address_family", "accept_threads", "work_threads",
        "disk_rw_separated", "disk_reader_threads", "disk_writer_threads", "sync_min_threads", "sync_max_threads",
        "sync_interval", "sync_start_time", "sync_end_time", "disk_recovery_threads", "fsync_after_written_bytes",
        "sync_log_buff_interval", "sync_binlog_buff_interval", "sync_stat_file_interval", "thread_stack_size",
        "if_alias_prefix", "check_file_duplicate", "file_signature_method", "key_namespace", "keep_alive",
        "use_access_log", "rotate_access_log", "access_log_rotate_time", "compress_old_access_log",
        "compress_access_log_days_before", "rotate_error_log", "error_log_rotate_time", "compress_old_error_log",
        "compress_error_log_days_before", "rotate_access_log_size", "rotate_error_log_size", "log_file_keep_days",
        "file_sync_skip_invalid_record", "use_connection_pool", "connection_pool_max_idle_time", "compress_binlog",
        "compress_binlog_time", "check_store_path_mark", "http.domain_name", "log_level", "run_by_group",
        "run_by_user", "min_buff_size", "max_buff_size", "http.mime_types_filename", "http.multi_range.enabed",
        "http.multi_range.enabled", "tracker_server_port", "response_mode", "url_have_group_name",
        "store_path_count", "storage_server_port", "align_size", "store_path", "use_storage_id",
    ]

    /// Builds the settings from a parsed storage.conf.
    public init(config: FDFSConfig) throws(FDFSProtocolError) {
        self.init()
        func entry(_ key: String) -> FDFSConfig.Entry? { config.entry(key) }
        func positive(_ key: String, _ fallback: Int, _ range: ClosedRange<Int>) throws(FDFSProtocolError) -> Int {
            let value = try config.int(key, default: fallback)
            if let entry = entry(key), !range.contains(value) {
                throw config.bad(entry, "in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }

        if let entry = entry("group_name") {
            do { try FileID.validateGroupName(entry.value) } catch { throw config.bad(entry, "a group name of 1 to 16 characters [A-Za-z0-9]") }
            group = entry.value
        }
        if let value = config.string("bind_addr"), !value.isEmpty { bindAddress = value }
        port = try positive("port", 23000, 1...65535)
        if let entry = entry("base_path") {
            guard entry.value.hasPrefix("/") else { throw config.bad(entry, "an absolute path") }
            basePath = entry.value
        }
        let pathCount = try positive("store_path_count", 1, 1...256)
        storePaths = []
        for index in 0..<pathCount {
            if let entry = entry("store_path\(index)") {
                guard entry.value.hasPrefix("/") else { throw config.bad(entry, "an absolute path") }
                storePaths.append(entry.value)
            } else if index == 0 {
                storePaths.append(basePath)
            } else {
                let where_ = config.entry("store_path_count").map { "\($0.file):\($0.line)" } ?? "storage.conf"
                throw FDFSProtocolError(.invalidConfig, "\(where_): store_path_count = \(pathCount) but store_path\(index) is missing")
            }
        }
        subdirCountPerPath = try positive("subdir_count_per_path", 256, 1...256)
        for entry in config.entries where entry.key == "tracker_server" {
            do { trackers.append(try ServerAddress(parsing: entry.value, defaultPort: 22122)) } catch {
                throw config.bad(entry, "a tracker address HOST[:PORT]")
            }
        }
        heartBeatInterval = try positive("heart_beat_interval", 30, 1...86400)
        statReportInterval = try positive("stat_report_interval", 300, 1...86400)
        syncWaitMsec = try positive("sync_wait_msec", 100, 1...3_600_000)
        connectTimeout = try positive("connect_timeout", 10, 1...3600)
        networkTimeout = try positive("network_timeout", 30, 1...3600)
        maxConnections = try positive("max_connections", 256, 1...1_000_000)
        uploadPriority = try config.int("upload_priority", default: 10)
        writeMarkFileFreq = try positive("write_mark_file_freq", 500, 1...1_000_000)
        let buff = try config.size("buff_size", default: 256 * 1024)
        if let entry = entry("buff_size"), !(4096...(64 << 20)).contains(buff) { throw config.bad(entry, "a size between 4KB and 64MB") }
        buffSize = Int(buff)
        var hostPatterns: [String] = []
        for entry in config.entries where entry.key == "allow_hosts" {
            do { _ = try AllowHosts(values: [entry.value]) } catch { throw config.bad(entry, "a host pattern (*, IP, CIDR or 10.0.1.[1-15,20])") }
            hostPatterns.append(entry.value)
        }
        if !hostPatterns.isEmpty {
            do { allowHosts = try AllowHosts(values: hostPatterns) } catch {
                throw FDFSProtocolError(.invalidConfig, "allow_hosts: \(error)")
            }
        }
        fileDistributePathMode = try positive("file_distribute_path_mode", 0, 0...1)
        fileDistributeRotateCount = try positive("file_distribute_rotate_count", 100, 1...100_000_000)
        httpPort = try positive("http.server_port", 8888, 0...65535)
        metricsPort = try positive("metrics_port", 0, 0...65535)
        httpDefaultContentType = config.string("http.default_content_type") ?? httpDefaultContentType
        storageSyncFileMaxDelay = try positive("storage_sync_file_max_delay", 86400, 1...Int(Int32.max))
        if try config.bool("http.anti_steal.check_token", default: false) {
            guard let secret = config.string("http.anti_steal.secret_key"), !secret.isEmpty else {
                let where_ = config.entry("http.anti_steal.check_token").map { "\($0.file):\($0.line)" } ?? "storage.conf"
                throw FDFSProtocolError(.invalidConfig, "\(where_): http.anti_steal.check_token is on but http.anti_steal.secret_key is empty")
            }
            let ttl = try positive("http.anti_steal.token_ttl", 600, 1...Int(Int32.max))
            let fail = config.string("http.anti_steal.token_check_fail").flatMap { $0.isEmpty ? nil : $0 }
            antiSteal = AntiStealSettings(secretKey: secret, tokenTTL: ttl, checkFailFile: fail)
        }

        let used: Set<String> = [
            "group_name", "bind_addr", "port", "base_path", "store_path_count", "subdir_count_per_path",
            "tracker_server", "heart_beat_interval", "stat_report_interval", "sync_wait_msec", "connect_timeout",
            "network_timeout", "max_connections", "upload_priority", "write_mark_file_freq", "buff_size", "allow_hosts",
            "file_distribute_path_mode", "file_distribute_rotate_count", "http.server_port",
            "http.default_content_type", "storage_sync_file_max_delay", "http.anti_steal.check_token",
            "http.anti_steal.secret_key", "http.anti_steal.token_ttl", "http.anti_steal.token_check_fail",
            "metrics_port",
        ]
        for entry in config.entries {
            let key = entry.key
            if used.contains(key) || Self.ignoredKeys.contains(key) { continue }
            if key.hasPrefix("store_path"), Int(key.dropFirst("store_path".count)) != nil { continue }
            if key.hasPrefix("store_path"), key.hasSuffix("_readonly") { continue }
            warnings.append("\(entry.file):\(entry.line): unknown key '\(key)' ignored")
        }
    }

    /// Reads a storage.conf file.
    public static func load(path: String) throws(FDFSProtocolError) -> StorageConfiguration {
        try StorageConfiguration(config: FDFSConfig.load(path: path))
    }

    /// Checks combinations that single keys cannot (after command-line overrides).
    public func validate() throws(FDFSProtocolError) {
        do { try FileID.validateGroupName(group) } catch { throw FDFSProtocolError(.invalidConfig, "group_name: \(error.message)") }
        guard !storePaths.isEmpty, storePaths.count <= 256 else { throw FDFSProtocolError(.invalidConfig, "store_path_count must be 1...256") }
        guard (1...65535).contains(port) else { throw FDFSProtocolError(.invalidConfig, "port \(port) outside 1...65535") }
        guard (0...65535).contains(httpPort) else { throw FDFSProtocolError(.invalidConfig, "http.server_port \(httpPort) outside 0...65535") }
        guard (0...65535).contains(metricsPort) else { throw FDFSProtocolError(.invalidConfig, "metrics_port \(metricsPort) outside 0...65535") }
    }

    /// Where state lives: `<base_path>/data`.
    public var dataDirectory: String { basePath + "/data" }
    /// Binlogs and mark files: `<base_path>/data/sync`.
    public var syncDirectory: String { basePath + "/data/sync" }
}
