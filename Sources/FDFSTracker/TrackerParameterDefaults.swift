import FDFSProtocol

/// The PARAMETER_REQ (75) reply, in the C tracker's key order and number formats.
enum TrackerParameterDefaults {
    enum Kind { case integer, size, boolean, time }

    /// Trunk-related keys this tracker does not use but hands to storages, with the C defaults.
    static let trunkKeys: [(key: String, kind: Kind, defaultValue: String)] = [
        ("slot_min_size", .size, "256"),
        ("slot_max_size", .size, "1048576"),
        ("trunk_alloc_alignment_size", .size, "256"),
        ("trunk_file_size", .size, "67108864"),
        ("trunk_create_file_advance", .boolean, "0"),
        ("trunk_create_file_time_base", .time, "02:00"),
        ("trunk_create_file_interval", .integer, "86400"),
        ("trunk_create_file_space_threshold", .size, "21474836480"),
        ("trunk_init_check_occupying", .boolean, "0"),
        ("trunk_init_reload_from_binlog", .boolean, "0"),
        ("trunk_free_space_merge", .boolean, "1"),
        ("delete_unused_trunk_files", .boolean, "0"),
        ("trunk_compress_binlog_min_interval", .integer, "86400"),
        ("trunk_compress_binlog_interval", .integer, "86400"),
        ("trunk_compress_binlog_time_base", .time, "03:00"),
        ("trunk_binlog_max_backups", .integer, "7"),
    ]

    static var passedThroughKeys: [String] { trunkKeys.map(\.key) }

    /// The wire text for a configured value, or nil when it is not valid for its kind.
    static func normalize(key: String, value: String) -> String? {
        guard let kind = trunkKeys.first(where: { $0.key == key })?.kind else { return nil }
        switch kind {
        case .integer: return Int64(value).map(String.init)
        case .size: return FDFSConfig.parseSize(value).map(String.init)
        case .boolean:
            switch value.lowercased() {
            case "true", "yes", "on", "1": return "1"
            case "false", "no", "off", "0": return "0"
            default: return nil
            }
        case .time:
            let parts = value.split(separator: ":")
            guard parts.count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]), (0..<24).contains(hour), (0..<60).contains(minute) else { return nil }
            return (hour < 10 ? "0" : "") + "\(hour):" + (minute < 10 ? "0" : "") + "\(minute)"
        }
    }
}

extension TrackerSettings {
    /// The PARAMETER_REQ (75) reply for these settings.
    public var parameters: TrackerParameters {
        func bit(_ flag: Bool) -> String { flag ? "1" : "0" }
        var entries: [TrackerParameters.Entry] = [
            .init(key: "use_storage_id", value: "0"),
            .init(key: "id_type_in_filename", value: "ip"),
            .init(key: "trust_storage_server_id", value: "1"),
            .init(key: "response_ip_addr_size", value: "\(responseIPAddressSize)"),
            .init(key: "storage_ip_changed_auto_adjust", value: bit(storageIPChangedAutoAdjust)),
            .init(key: "storage_sync_file_max_delay", value: "\(storageSyncFileMaxDelay)"),
            .init(key: "store_path", value: "\(storePath.rawValue)"),
            .init(key: "reserved_storage_space", value: reservedSpace.description),
            .init(key: "use_trunk_file", value: "0"),
        ]
        for item in TrackerParameterDefaults.trunkKeys {
            entries.append(.init(key: item.key, value: passThrough[item.key] ?? item.defaultValue))
        }
        entries.append(.init(key: "store_slave_file_use_link", value: bit(storeSlaveFileUseLink)))
        return TrackerParameters(entries: entries)
    }
}
