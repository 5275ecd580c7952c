import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP socket for tests that must misbehave on the wire: send half a header, send a
/// byte at a time, or say nothing, and then see when the server hangs up.
public final class RawSocket {
    public let fd: Int32

    /// Connects to `host:port`; reads time out after `receiveTimeout` seconds.
    public init(host: String, port: Int, receiveTimeout: Int = 10) throws {
        fd = try connectIPv4(host: host, port: port, receiveTimeout: receiveTimeout).get()
    }

    deinit { close(fd) }

    /// Writes all of `bytes` (MSG_NOSIGNAL: a closed peer is an error, not a signal).
    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw RawSocketError("send failed: errno \(errno)") }
            offset += written
        }
    }

    /// A FastDFS header: 8-byte big-endian body length, command, status.
    public static func header(bodyLength: Int64, command: UInt8, status: UInt8 = 0) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: bodyLength >> (8 * (7 - $0))) } + [command, status]
    }

    /// Reads exactly `count` bytes; nil on EOF or reset.
    public func read(_ count: Int) throws -> [UInt8]? {
        var result = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let got = result[offset...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got == 0 || (got < 0 && errno == ECONNRESET) { return nil }
            guard got > 0 else { throw RawSocketError("recv failed: errno \(errno)") }
            offset += got
        }
        return result
    }

    /// Reads one FastDFS response (header and body); nil if the server closed first.
    public func readResponse() throws -> (status: UInt8, body: [UInt8])? {
        guard let head = try read(10) else { return nil }
        let length = head[0..<8].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        guard length >= 0, length < 64 << 20 else { throw RawSocketError("response length \(length)") }
        guard let body = length == 0 ? [] : try read(Int(length)) else { return nil }
        return (head[9], body)
    }

    /// Reads and discards until the server closes; returns the seconds that took, or nil if it
    /// was still open after `seconds`.
    public func secondsUntilClosed(within seconds: Double) -> Double? {
        let start = Date()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let left = seconds - Date().timeIntervalSince(start)
            if left <= 0 { return nil }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(left * 1000) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR) { return Date().timeIntervalSince(start) }
        }
    }

    /// True when the server has already closed the connection (no waiting).
    public var isClosedByPeer: Bool { secondsUntilClosed(within: 0.05) != nil }
}

/// A new TCP socket connected to the IPv4 address `host:port` (reads time out after
/// `receiveTimeout` seconds when given), or why it could not be.
public func connectIPv4(host: String, port: Int, receiveTimeout: Int? = nil) -> Result<Int32, RawSocketError> {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return .failure(RawSocketError("socket failed: errno \(errno)")) }
    if let receiveTimeout {
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, host, &address.sin_addr)
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard result == 0 else {
        let code = errno
        close(fd)
        return .failure(RawSocketError("connect to \(host):\(port) failed: errno \(code)"))
    }
    return .success(fd)
}

/// A failed raw socket operation.
public struct RawSocketError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The resident set size of a process in KiB (`VmRSS` of /proc/PID/status), nil if unknown.
public func residentKiB(pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
    }
    return nil
}
