import FDFSProtocol
import Foundation
import class FDFSTestSupport.ChildProcess
import enum FDFSTestSupport.Processes
import func FDFSTestSupport.connectIPv4
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass.
func waitUntil(_ what: String, seconds: Double = 20, _ condition: () throws -> Bool) throws {
    guard try Processes.wait(for: seconds, condition) else { throw TestFailure("timed out after \(seconds) s waiting for \(what)") }
}

/// A running `fdfs-trackerd` started by a test. Call ``stop()`` (in a `defer`) to end it.
final class TrackerDaemon {
    let process: ChildProcess
    let logPath: String
    private(set) var port = 0

    /// Starts the daemon with `arguments` and, unless `waitForListening` is false, waits until it
    /// logs its listening address.
    init(arguments: [String], waitForListening: Bool = true) throws {
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("fdfs-trackerd-\(UUID().uuidString).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process = try ChildProcess(try Processes.builtExecutable("fdfs-trackerd"), arguments, stderr: .file(logPath))
        if waitForListening {
            do {
                try waitUntil("the daemon to listen") {
                    guard process.isRunning else { throw TestFailure("fdfs-trackerd exited early: \(log)") }
                    if let port = Self.listeningPort(in: log) {
                        self.port = port
                        return true
                    }
                    return false
                }
            } catch {
                stop()
                throw error
            }
        }
    }

    /// Starts on a free loopback port with `basePath` and optional extra arguments.
    convenience init(basePath: String, extra: [String] = []) throws {
        try self.init(arguments: extra + ["--port", "0", "--bind", "127.0.0.1", "--base-path", basePath])
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    static func listeningPort(in log: String) -> Int? {
        guard let range = log.range(of: "listening on 127.0.0.1:") else { return nil }
        let digits = log[range.upperBound...].prefix { $0.isNumber }
        return Int(digits)
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s. Returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        process.stop()
    }

    deinit {
        process.kill9()
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

/// A blocking POSIX TCP client on loopback, with receive timeouts.
final class RawClient {
    let fd: Int32

    init(port: Int, host: String = "127.0.0.1") throws {
        switch connectIPv4(host: host, port: port, receiveTimeout: 10) {
        case .success(let fd): self.fd = fd
        case .failure(let error): throw TestFailure(error.description)
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { throw TestFailure("write failed: errno \(errno)") }
            offset += written
        }
    }

    /// Sends a request frame.
    func send(_ command: FDFSCommand, _ body: ByteBuffer = ByteBuffer()) throws {
        var frame = FDFSHeader(bodyLength: Int64(body.readableBytes), command: command).encoded()
        var copy = body
        frame.writeBuffer(&copy)
        try send(frame.bytes)
    }

    /// Reads exactly `count` bytes; nil on EOF.
    func read(_ count: Int) throws -> [UInt8]? {
        var result = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let got = result[offset...].withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got == 0 { return nil }
            guard got > 0 else { throw TestFailure("read failed: errno \(errno)") }
            offset += got
        }
        return result
    }

    /// Reads one response frame.
    func receive() throws -> (status: UInt8, body: ByteBuffer) {
        guard let head = try read(FDFSHeader.size) else { throw TestFailure("connection closed before a reply") }
        var buffer = ByteBuffer(bytes: head)
        let header = try FDFSHeader.decode(from: &buffer)!
        guard header.command == .response else { throw TestFailure("reply with cmd \(header.command)") }
        let body = header.bodyLength == 0 ? [] : (try read(Int(header.bodyLength)) ?? [])
        return (header.status, ByteBuffer(bytes: body))
    }

    /// Sends a request and reads its reply.
    func call(_ command: FDFSCommand, _ body: ByteBuffer = ByteBuffer()) throws -> (status: UInt8, body: ByteBuffer) {
        try send(command, body)
        return try receive()
    }

    /// True when the server closed the connection (a read sees EOF or a reset).
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        let got = Glibc.read(fd, &byte, 1)
        return got == 0 || (got < 0 && errno == ECONNRESET)
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}
