import FDFSProtocol
@testable import FDFSTracker
import NIOCore
import Testing

/// tracker.conf reading and allow_hosts.
@Suite("Settings")
struct SettingsTests {
    @Test("the sample tracker.conf keys are read")
    func sampleKeys() throws {
        let text = """
        disabled = false
        bind_addr =
        port = 22200
        base_path = /tmp/x
        max_buff_size = 256KB
        store_lookup = 2
        store_group = group2
        store_server = 2
        store_path = 2
        download_server = 1
        reserved_storage_space = 20%
        allow_hosts = 127.0.0.[1-255]
        check_active_interval = 120
        storage_sync_file_max_delay = 86400
        storage_sync_file_max_time = 300
        slot_max_size = 1MB
        trunk_create_file_time_base = 2:00
        trunk_free_space_merge = true
        log_level = info
        no_such_key = 1
        """
        let config = try FDFSConfig(text: text, file: "tracker.conf")
        let settings = try TrackerSettings(config: config)
        #expect(settings.port == 22200 && settings.basePath == "/tmp/x" && settings.maxBufferSize == 256 * 1024)
        #expect(settings.storeLookup == .loadBalance && settings.storeServer == .firstByPriority && settings.storePath == .loadBalance)
        #expect(settings.downloadServer == .sourceFirst && settings.reservedSpace == .ratio(0.2) && settings.checkActiveInterval == 120)
        #expect(settings.allowHosts.allows("127.0.0.200") && !settings.allowHosts.allows("10.0.0.1"))
        #expect(TrackerSettings.unknownEntries(in: config).map(\.key) == ["no_such_key"])
        let parameters = settings.parameters
        #expect(parameters["slot_max_size"] == "1048576")
        #expect(parameters["trunk_create_file_time_base"] == "02:00")
        #expect(parameters["trunk_free_space_merge"] == "1")
        #expect(parameters["reserved_storage_space"] == "20.00%")
        #expect(parameters["store_path"] == "2")
    }

    @Test("without a file the defaults give the captured PARAMETER_REQ reply, reserved space aside")
    func defaultParameters() throws {
        let reply = try Vectors.exchanges("20_storage_join_beat").first { $0.request.cmd == 75 }!.response!.body
        var settings = TrackerSettings()
        #expect(settings.parameters["reserved_storage_space"] == "1024MB")
        settings.reservedSpace = .ratio(0.01)
        #expect(settings.parameters.encoded().bytes == reply.bytes)
    }

    @Test("bad values name the file and line", arguments: [
        ("port = abc", "tracker.conf:2: port = 'abc'"),
        ("store_lookup = 7", "tracker.conf:2: store_lookup = '7'"),
        ("reserved_storage_space = 120%", "tracker.conf:2: reserved_storage_space"),
        ("max_buff_size = 1KB", "tracker.conf:2: max_buff_size"),
        ("allow_hosts = 10.0.0.[5-1]", "tracker.conf:2: allow_hosts"),
        ("use_storage_id = true", "tracker.conf:2: use_storage_id"),
        ("check_active_interval = 0", "tracker.conf:2: check_active_interval"),
    ])
    func badValues(line: String, expected: String) throws {
        let config = try FDFSConfig(text: "# comment\n\(line)\n", file: "tracker.conf")
        do {
            _ = try TrackerSettings(config: config)
            Issue.record("\(line) was accepted")
        } catch {
            #expect(error.description.contains(expected), "\(error)")
        }
    }

    @Test("allow_hosts: *, addresses, CIDR, ranges, names")
    func allowHosts() throws {
        #expect(AllowHosts.everyone.allows("1.2.3.4"))
        #expect(try AllowHosts(values: []).allows("1.2.3.4"))
        let rule = try AllowHosts(values: ["10.0.1.[1-15,20]", "192.168.0.0/16", "127.0.0.1", "host[01-02].test", "::1"]) { name in
            ["host01.test": ["172.16.0.1"], "host02.test": ["172.16.0.2"]][name] ?? []
        }
        for ip in ["10.0.1.1", "10.0.1.15", "10.0.1.20", "192.168.44.3", "127.0.0.1", "172.16.0.2", "::1", "::ffff:127.0.0.1"] {
            #expect(rule.allows(ip), "\(ip)")
        }
        for ip in ["10.0.1.16", "10.0.1.0", "192.169.0.1", "127.0.0.2", "172.16.0.3", "::2"] {
            #expect(!rule.allows(ip), "\(ip)")
        }
        #expect(try AllowHosts(values: ["*", "10.0.0.1"]).allows("8.8.8.8"))
        #expect(throws: AllowHostsError.self) { try AllowHosts(values: ["10.0.0.0/33"]) }
        #expect(throws: AllowHostsError.self) { try AllowHosts(values: ["10.0.0.[1-"]) }
        #expect(throws: AllowHostsError.self) { try AllowHosts(values: ["no-such-host.invalid"]) { _ in [] } }
    }
}
