import FDFSProtocol
import Foundation
import FDFSTestSupport
import Testing

@Suite("Config reader")
struct ConfigTests {
    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fdfs-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func write(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// The message of the FDFSProtocolError `body` throws, or nil (and an issue) when it does not.
    static func errorMessage(_ body: () throws -> Void) -> String? {
        do {
            try body()
            Issue.record("no error thrown")
            return nil
        } catch let error as FDFSProtocolError {
            #expect(error.code == .invalidConfig)
            return error.message
        } catch {
            Issue.record("unexpected error type: \(error)")
            return nil
        }
    }

    @Test("key = value lines, comments, blank lines, CRLF and repeated keys")
    func basics() throws {
        let text = """
            # a comment
              disabled = false\r
            bind_addr=
            base_path = /home/yuqing/fastdfs   \r

            tracker_server = 192.168.0.196:22122
            # tracker_server = commented.out:1
            tracker_server=192.168.0.197:22122
            url = http://x/?a=b
            connect_timeout = 5s
            """
        let config = try FDFSConfig(text: text, file: "client.conf")
        #expect(config.string("disabled") == "false")
        #expect(config.string("bind_addr") == "")
        #expect(config.string("base_path") == "/home/yuqing/fastdfs")
        #expect(config.string("tracker_server") == "192.168.0.196:22122", "first value")
        #expect(config.strings("tracker_server") == ["192.168.0.196:22122", "192.168.0.197:22122"])
        #expect(config.string("url") == "http://x/?a=b", "only the first '=' splits")
        #expect(config.keys == ["disabled", "bind_addr", "base_path", "tracker_server", "url", "connect_timeout"])
        #expect(config.entry("tracker_server")?.line == 6 && config.entry("tracker_server")?.file == "client.conf")
        #expect(config.string("missing") == nil && config.strings("missing").isEmpty)
        #expect(try config.bool("disabled", default: true) == false)
        #expect(try config.int("missing", default: 30) == 30)
        #expect(try config.int("bind_addr", default: 7) == 7, "an empty value means the default")
    }

    @Test("[section] blocks keep their keys apart from the global ones")
    func sections() throws {
        let config = try FDFSConfig(text: """
            global = 1
            [group1]
            group_name = group1
            store_path0 = /a
            [ group2 ]
            group_name = group2
            """)
        #expect(config.keys == ["global"])
        #expect(config.sections["group1"]?.map(\.key) == ["group_name", "store_path0"])
        #expect(config.sections["group2"]?.first?.value == "group2")
        #expect(config.sections["group2"]?.first?.line == 6)
    }

    @Test("#include is resolved against the including file's directory, recursively")
    func includes() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.write("""
            first = main
            #include sub/common.conf
            #include \(dir.path)/abs.conf
            last = main
            """, to: dir.appendingPathComponent("etc/storage.conf"))
        try Self.write("common = yes\n#include more.conf\n", to: dir.appendingPathComponent("etc/sub/common.conf"))
        try Self.write("more = 1\ntracker_server = a:1\n", to: dir.appendingPathComponent("etc/sub/more.conf"))
        try Self.write("abs = 2\ntracker_server = b:2\n", to: dir.appendingPathComponent("abs.conf"))
        let path = dir.appendingPathComponent("etc/storage.conf").path
        let config = try FDFSConfig.load(path: path)
        #expect(config.keys == ["first", "common", "more", "tracker_server", "abs", "last"])
        #expect(config.strings("tracker_server") == ["a:1", "b:2"])
        #expect(config.entry("more")?.file == dir.appendingPathComponent("etc/sub/more.conf").path)
        #expect(config.entry("more")?.line == 1)
        #expect(config.entry("last")?.line == 4 && config.entry("last")?.file == path)
    }

    @Test("a missing include names the including file and line")
    func missingInclude() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("tracker.conf").path
        try Self.write("a = 1\n\n#include nothere.conf\n", to: URL(fileURLWithPath: path))
        let message = Self.errorMessage { _ = try FDFSConfig.load(path: path) }
        #expect(message?.contains("\(path):3") == true, "\(message ?? "")")
        #expect(message?.contains("nothere.conf") == true)
        #expect(Self.errorMessage { _ = try FDFSConfig.load(path: dir.appendingPathComponent("absent.conf").path) }?.contains("absent.conf") == true)
    }

    @Test("an include loop is stopped")
    func includeLoop() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.write("#include b.conf\n", to: dir.appendingPathComponent("a.conf"))
        try Self.write("x = 1\n#include a.conf\n", to: dir.appendingPathComponent("b.conf"))
        let message = Self.errorMessage { _ = try FDFSConfig.load(path: dir.appendingPathComponent("a.conf").path) }
        #expect(message?.contains("nested too deeply") == true)
    }

    @Test("bad lines are errors naming file and line", arguments: [
        ("a = 1\nthis line has no equals sign\n", 2),
        ("a = 1\n\n\n = value\n", 4),
        ("[unterminated\n", 1),
        ("ok = 1\n[]\n", 2),
    ])
    func badLines(text: String, line: Int) {
        let message = Self.errorMessage { _ = try FDFSConfig(text: text, file: "/etc/fdfs/bad.conf") }
        #expect(message?.hasPrefix("/etc/fdfs/bad.conf:\(line):") == true, "\(message ?? "")")
    }

    @Test("int, bool and size values: parsing and errors naming file:line")
    func typedValues() throws {
        let config = try FDFSConfig(text: """
            port = 23000
            negative = -5
            bad_int = 12abc
            on = yes
            off = Off
            one = 1
            bad_bool = maybe
            buff = 256KB
            big = 64MB
            huge = 2G
            plain = 1024
            bad_size = 12X
            """, file: "s.conf")
        #expect(try config.int("port", default: 0) == 23000)
        #expect(try config.int("negative", default: 0) == -5)
        #expect(try config.bool("on", default: false) && !(try config.bool("off", default: true)) && config.bool("one", default: false))
        #expect(try config.size("buff", default: 0) == 256 * 1024)
        #expect(try config.size("big", default: 0) == 64 << 20)
        #expect(try config.size("huge", default: 0) == 2 << 30)
        #expect(try config.size("plain", default: 0) == 1024)
        #expect(try config.size("absent", default: 99) == 99)
        #expect(Self.errorMessage { _ = try config.int("bad_int", default: 0) }?.hasPrefix("s.conf:3: bad_int") == true)
        #expect(Self.errorMessage { _ = try config.bool("bad_bool", default: false) }?.hasPrefix("s.conf:7: bad_bool") == true)
        #expect(Self.errorMessage { _ = try config.size("bad_size", default: 0) }?.hasPrefix("s.conf:12: bad_size") == true)
        #expect(Self.errorMessage { _ = try config.int("buff", default: 0) }?.contains("s.conf:8") == true)
    }

    @Test("size syntax", arguments: [
        ("0", 0), ("123", 123), ("4K", 4096), ("4k", 4096), ("4KB", 4096), ("256kb", 262_144), ("64M", 67_108_864),
        ("64MB", 67_108_864), ("2G", 2_147_483_648), ("1GB", 1_073_741_824), ("1T", 1_099_511_627_776),
    ] as [(String, Int64)])
    func sizes(text: String, value: Int64) {
        #expect(FDFSConfig.parseSize(text) == value)
    }

    @Test("bad sizes", arguments: ["", "K", "MB", "-1", "-1K", "12X", "1.5G", "G1", "9223372036854775807K", "ten", "7B"])
    func badSizes(text: String) {
        #expect(FDFSConfig.parseSize(text) == nil)
    }

    @Test("ServerAddress parses host[:port], [v6]:port and inner,outer:port")
    func serverAddresses() throws {
        let cases: [(String, String, Int)] = [
            ("127.0.0.1:22122", "127.0.0.1", 22122),
            ("tracker.example.com", "tracker.example.com", 22122),
            ("  10.0.0.1:23000  ", "10.0.0.1", 23000),
            ("[::1]:22122", "::1", 22122),
            ("[fe80::1]", "fe80::1", 22122),
            ("192.168.0.1,10.0.0.1:22123", "192.168.0.1", 22123),
            ("h:65535", "h", 65535),
        ]
        for (text, host, port) in cases {
            let address = try ServerAddress(parsing: text, defaultPort: 22122)
            #expect(address == ServerAddress(host: host, port: port), "\(text)")
        }
        #expect(ServerAddress(host: "::1", port: 1).description == "[::1]:1")
        #expect(ServerAddress(host: "a.b", port: 2).description == "a.b:2")
        for bad in ["", ":22122", "host:", "host:abc", "host:0", "host:65536", "host:-1", "[::1", "[::1]:x", "[]:1"] {
            #expect(throws: FDFSProtocolError.self, "\(bad)") { try ServerAddress(parsing: bad, defaultPort: 22122) }
        }
    }
}
