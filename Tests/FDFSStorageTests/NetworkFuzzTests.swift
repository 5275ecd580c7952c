import FDFSClient
import FDFSProtocol
import FDFSTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 14 §3: hostile bytes against running fdfs-trackerd and fdfs-storaged (every command
/// code with random bodies, mutants of captured frames, lying lengths, names that try to leave
/// the store path, frames back to back), hostile HTTP requests, and floods of idle and
/// half-sent connections. The servers must not crash, must not create a file outside their
/// store paths, must keep their memory bounded, close idle connections after network_timeout,
/// hold max_connections, and still serve real clients afterwards.
/// `FDFS_NETFUZZ_INPUTS` sets the inputs per server (default 3 000; `Scripts/fuzz -n N`).
@Suite(.serialized) struct NetworkFuzzTests {
    static let inputs = Int(ProcessInfo.processInfo.environment["FDFS_NETFUZZ_INPUTS"] ?? "") ?? 3_000

    /// Sends `bytes` on a new connection, ends the sending side and waits (at most `seconds`)
    /// for the server to finish answering and close.
    static func exchange(_ bytes: [UInt8], host: String, port: Int, seconds: Double = 3) throws -> Bool {
        let socket = try RawSocket(host: host, port: port, receiveTimeout: 3)
        try? socket.send(bytes)
        shutdown(socket.fd, Int32(SHUT_WR))
        return socket.secondsUntilClosed(within: seconds) != nil
    }

    /// Files whose name holds `marker` anywhere they could have been written by a path escape.
    static func escapedFiles(_ marker: String, allowedUnder allowed: [String]) -> [String] {
        let result = try? Processes.shell("find /tmp /var/tmp /work -xdev -name '*\(marker)*' 2>/dev/null; find / -xdev -maxdepth 3 -name '*\(marker)*' 2>/dev/null")
        let found = Set((result?.stdout ?? "").split(separator: "\n").map(String.init))
        return found.filter { path in !allowed.contains { path.hasPrefix($0 + "/data/") } }.sorted()
    }

    /// How many of `sockets` the server has closed within `seconds` (all watched at once).
    static func closedBy(_ sockets: [RawSocket], within seconds: Double) -> Int {
        var closed = Set<Int32>()
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline, closed.count < sockets.count {
            var fds = sockets.filter { !closed.contains($0.fd) }.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 50) > 0 else { continue }
            for entry in fds where entry.revents != 0 {
                let got = buffer.withUnsafeMutableBytes { recv(entry.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR) { closed.insert(entry.fd) }
            }
        }
        return closed.count
    }

    @Test func hostileFramesNeitherCrashNorEscapeNorGrowTheServers() async throws {
        let tracker = TrackerNode()
        try await tracker.start()
        defer { tracker.destroy() }
        let storage = StorageNode(trackers: [tracker.address], httpPort: freePort(), networkTimeout: 2)
        try await storage.start()
        defer { storage.destroy() }
        let marker = "netfuzz\(UInt32.random(in: 100_000...999_999))"
        var lines: [String] = []
        for (name, port, process) in [("fdfs-trackerd", tracker.port, tracker.process!), ("fdfs-storaged", storage.port, storage.process!)] {
            let before = residentKiB(pid: process.pid) ?? 0
            var peak = before
            var frames = HostileFrames(seed: 0x6E66_757A, marker: marker)
            var unanswered = 0
            let started = Date()
            for index in 0..<Self.inputs {
                if (try? Self.exchange(frames.next(index), host: "127.0.0.1", port: port)) != true { unanswered += 1 }
                if index % 250 == 0 {
                    #expect(process.isRunning, "\(name) died at input \(index): \(process.log.suffix(2000))")
                    if !process.isRunning { return }
                    peak = max(peak, residentKiB(pid: process.pid) ?? 0)
                }
            }
            let after = try await settledResidentKiB(pid: process.pid)
            peak = max(peak, after)
            #expect(process.isRunning, "\(name) died: \(process.log.suffix(2000))")
            #expect(after - before < 64 << 10, "\(name) grew from \(before) KiB to \(after) KiB over \(Self.inputs) hostile inputs")
            lines.append("\(name): \(Self.inputs) inputs in \(Int(Date().timeIntervalSince(started))) s, \(unanswered) left open past 3 s, RSS \(before) -> \(after) KiB (peak \(peak))")
        }
        print(lines.joined(separator: "\n"))
        let escapes = Self.escapedFiles(marker, allowedUnder: [storage.storePath])
        #expect(escapes.isEmpty, "files written outside the store path: \(escapes)")
        // Real clients are still served.
        let client = try await StorageClient.connect(storage)
        defer { client.close() }
        let id = try await client.upload(Array("still here".utf8), ext: "txt")
        #expect(try await client.download(id) == Array("still here".utf8))
    }

    @Test func hostileHTTPRequestsGetAnAnswerAndNeverAFileOutsideTheStore() async throws {
        let storage = StorageNode(httpPort: freePort(), networkTimeout: 2)
        try await storage.start()
        defer { storage.destroy() }
        let client = try await StorageClient.connect(storage)
        defer { client.close() }
        let content = Array("0123456789".utf8)
        let id = try await client.upload(content, ext: "txt")
        let secret = "root:x:0:0"
        let file = "/\(id.description)"
        let traversals = [
            "/group1/M00/00/00/../../../../../../etc/passwd", "/group1/M00/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/group1/M00/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", "/group1/M00/%252e%252e/%252e%252e/etc/passwd",
            "/group1/M00/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "/group1/M00/..\\..\\..\\..\\etc\\passwd",
            "//etc/passwd", "/group1/M00/00/00/%00../../etc/passwd", "/M00/00/00/../../../../../../../../etc/passwd",
            "/group1/M00/00/00/\(id.generated.encoded)/../../../../../etc/passwd", "/group1/M00/00/00/.", "/group1/M00/00/00/..",
            "/..", "/group1/M00/00/00/%2F..%2F..%2F..%2Fetc%2Fpasswd", "/group1/M00/00/00/x?filename=../../etc/passwd",
        ]
        for path in traversals {
            let response = try httpRequest(host: storage.ip, port: storage.httpPort, path: path)
            #expect(response.status != 200 && [400, 403, 404].contains(response.status), "\(path): \(response.status)")
            #expect(!String(decoding: response.body, as: UTF8.self).contains(secret), "\(path) served /etc/passwd")
        }
        let ranges: [(String, [Int])] = [
            ("bytes=5-1", [416]), ("bytes=0-0,2-3", [416]), ("bytes=-0", [416]), ("bytes=99999999999999999999-", [416]),
            ("bytes=10-", [416]), ("bytes=abc", [416, 200]), ("bytes=--1", [416, 200]), ("bytes=0-9223372036854775807", [206]),
            ("bytes=-99999999999999999999", [206, 416]), ("items=0-1", [200]), ("bytes= 1 - 2 ", [206, 416]),
        ]
        for (range, allowed) in ranges {
            let response = try httpRequest(host: storage.ip, port: storage.httpPort, path: file, headers: ["Range": range])
            #expect(allowed.contains(response.status), "Range: \(range) answered \(response.status)")
            if response.status == 200 || response.status == 206 { #expect(content.starts(with: []) && response.body.allSatisfy { content.contains($0) }) }
        }
        // An oversized header is refused or the connection closed; the server goes on serving.
        let huge = String(repeating: "a", count: 200_000)
        if let response = try? httpRequest(host: storage.ip, port: storage.httpPort, path: file, headers: ["X-Fill": huge]) {
            #expect([400, 413, 431].contains(response.status), "a 200 KB header answered \(response.status)")
        }
        let longPath = "/" + String(repeating: "a/", count: 40_000)
        if let response = try? httpRequest(host: storage.ip, port: storage.httpPort, path: longPath) {
            #expect([400, 404, 414].contains(response.status), "an 80 KB path answered \(response.status)")
        }
        #expect(storage.process!.isRunning)
        let again = try httpRequest(host: storage.ip, port: storage.httpPort, path: file)
        #expect(again.status == 200 && again.body == content)
    }

    /// Found by the anti-steal-token fuzz target: `ts=-9223372036854775808` overflowed the
    /// token's age and the storage died on the request.
    @Test func antiStealTokensWithHostileTimestampsAreRefusedNotFatal() async throws {
        let storage = StorageNode(httpPort: freePort(), extraConfig: """
            http.anti_steal.check_token = true
            http.anti_steal.secret_key = FastDFS1234567890
            http.anti_steal.token_ttl = 900
            """, networkTimeout: 2)
        try await storage.start()
        defer { storage.destroy() }
        let client = try await StorageClient.connect(storage)
        defer { client.close() }
        let id = try await client.upload(Array("guarded".utf8), ext: "txt")
        let token = String(repeating: "0", count: 32)
        for ts in ["-9223372036854775808", "9223372036854775807", "-1", "99999999999999999999", "0x10", ""] {
            let response = try httpRequest(host: storage.ip, port: storage.httpPort, path: "/\(id.description)?token=\(token)&ts=\(ts)")
            #expect(response.status == 400, "ts=\(ts): \(response.status)")
            #expect(storage.process!.isRunning, "the storage died on ts=\(ts)")
        }
    }

    @Test func floodsOfIdleAndHalfSentConnectionsAreClosedAndMaxConnectionsHolds() async throws {
        let storage = StorageNode(extraConfig: "max_connections = 64", networkTimeout: 2)
        try await storage.start()
        defer { storage.destroy() }
        var squatters: [RawSocket] = []
        for index in 0..<300 {
            guard let socket = try? RawSocket(host: storage.ip, port: storage.port, receiveTimeout: 1) else { continue }
            if index % 3 == 1 { try? socket.send(RawSocket.header(bodyLength: 100, command: 14, status: 0).prefix(5).map { $0 }) }
            if index % 3 == 2 { try? socket.send(RawSocket.header(bodyLength: 1 << 20, command: 11, status: 0) + [0, 0, 0, 0]) }
            squatters.append(socket)
        }
        // Past the limit, connections are closed at once (well before network_timeout).
        let refused = Self.closedBy(Array(squatters.suffix(200)), within: 0.5)
        #expect(refused >= 150, "only \(refused) of the 200 connections past max_connections=64 were closed at once")
        // The ones admitted are closed after network_timeout, and a real client gets in again.
        let admitted = squatters.prefix(64)
        let closed = admitted.filter { $0.secondsUntilClosed(within: 6) != nil }.count
        #expect(closed == admitted.count, "\(admitted.count - closed) idle or half-sent connections still open after network_timeout")
        squatters.removeAll()
        let client = try await StorageClient.connect(storage)
        defer { client.close() }
        let id = try await client.upload(Array("served".utf8), ext: "txt")
        #expect(try await client.download(id) == Array("served".utf8))
        #expect(storage.process!.isRunning)
    }
}
