import FDFSProtocol
import class FDFSTestSupport.RawSocket
import Foundation
import Testing

/// `network_timeout` on the tracker port (issue 15 #6): idle sockets used to fill
/// `max_connections` for good and lock every new client out.
@Suite("fdfs-trackerd network_timeout", .serialized)
struct TrackerIdleTimeoutTests {
    static let timeout = 2
    var limit: Double { Double(Self.timeout) * 2 + 2 }

    func startDaemon(_ extra: String = "") throws -> (TrackerDaemon, String) {
        let base = EndToEndTests.temporaryDirectory()
        let conf = base + "/tracker.conf"
        try "network_timeout = \(Self.timeout)\n\(extra)".write(toFile: conf, atomically: true, encoding: .utf8)
        return (try TrackerDaemon(basePath: base, extra: [conf]), base)
    }

    @Test("idle, half-header and trickling connections are closed within the timeout")
    func stalledConnectionsAreClosed() throws {
        let (daemon, base) = try startDaemon()
        defer { daemon.stop(); try? FileManager.default.removeItem(atPath: base) }
        let activeTest = RawSocket.header(bodyLength: 0, command: FDFSCommand.activeTest.rawValue)

        let idle = try RawSocket(host: "127.0.0.1", port: daemon.port)
        let half = try RawSocket(host: "127.0.0.1", port: daemon.port)
        try half.send(Array(activeTest.prefix(4)))
        let served = try RawSocket(host: "127.0.0.1", port: daemon.port)
        try served.send(activeTest)
        #expect(try served.readResponse()?.status == 0)
        #expect(idle.secondsUntilClosed(within: limit) != nil)
        #expect(half.secondsUntilClosed(within: limit) != nil)
        #expect(served.secondsUntilClosed(within: limit) != nil, "a client idle after a request is closed too")

        // A header sent a byte per 0.7 s would take 7 s.
        let trickle = try RawSocket(host: "127.0.0.1", port: daemon.port)
        let start = Date()
        var closed = false
        for byte in activeTest {
            if (try? trickle.send([byte])) == nil || trickle.secondsUntilClosed(within: 0.7) != nil {
                closed = true
                break
            }
        }
        #expect(closed && Date().timeIntervalSince(start) < limit, "trickled header held \(Date().timeIntervalSince(start)) s")
    }

    @Test("max_connections: idle sockets no longer lock new clients out after the timeout")
    func idleSocketsFreeTheirSlots() throws {
        let (daemon, base) = try startDaemon("max_connections = 3\n")
        defer { daemon.stop(); try? FileManager.default.removeItem(atPath: base) }
        let squatters = try (0..<3).map { _ in try RawSocket(host: "127.0.0.1", port: daemon.port) }
        let refused = try RawSocket(host: "127.0.0.1", port: daemon.port)
        #expect(refused.secondsUntilClosed(within: 1) != nil, "over the limit: closed at once")
        for squatter in squatters { #expect(squatter.secondsUntilClosed(within: limit) != nil) }
        let client = try RawSocket(host: "127.0.0.1", port: daemon.port)
        try client.send(RawSocket.header(bodyLength: 0, command: FDFSCommand.activeTest.rawValue))
        #expect(try client.readResponse()?.status == 0)
    }
}
