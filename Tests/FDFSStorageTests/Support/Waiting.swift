import Foundation
import enum FDFSTestSupport.Processes
import func FDFSTestSupport.connectIPv4
import func FDFSTestSupport.residentKiB
#if canImport(Glibc)
import Glibc
#endif

/// A free TCP port on `host`: a random one below the kernel's ephemeral range (32768 and up)
/// that binds, then released. A port from bind(0) would come from that range, where any
/// outgoing connection of a test running meanwhile may take it as its local port before the
/// server that was given it binds (seen: a storage failing with EADDRINUSE under load).
func freePort(host: String = "127.0.0.1") -> Int {
    for _ in 0..<500 {
        let port = Int.random(in: 10_000..<22_000)
        if canBind(host: host, port: port) { return port }
    }
    return 0
}

/// Whether `host:port` can be bound now (TCP, without SO_REUSEADDR).
private func canBind(host: String, port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, host, &address.sin_addr)
    let length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } } == 0
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass.
func waitUntil(_ seconds: Double, _ what: String = "condition", _ condition: () async throws -> Bool) async throws {
    guard try await Processes.wait(for: seconds, condition) else { throw TestFailure("timed out after \(seconds) s waiting for \(what)") }
}

/// The resident set size of `pid` once it has settled: two samples 100 ms apart within 64 KiB
/// of each other (at most 5 s), so a measurement is not taken while freed memory is in flight.
func settledResidentKiB(pid: Int32) async throws -> Int {
    var last = residentKiB(pid: pid) ?? 0
    try await waitUntil(5, "the RSS of \(pid) to settle") {
        try await Task.sleep(for: .milliseconds(100))
        let now = residentKiB(pid: pid) ?? 0
        defer { last = now }
        return abs(now - last) < 64
    }
    return last
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// True when something accepts TCP connections on host:port.
func isListening(host: String, port: Int) -> Bool {
    guard case .success(let fd) = connectIPv4(host: host, port: port) else { return false }
    close(fd)
    return true
}
