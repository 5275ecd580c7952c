import FDFSProtocol
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// One TCP connection to a storage server, driven with blocking POSIX calls, for downloads
/// received straight into the caller's memory (``FDFSClient/downloadOnce(_:from:offset:into:chunkSize:cancel:chunk:)``).
/// Used only on a thread of ``DownloadThreads``: every call may block up to the network timeout
/// (`SO_RCVTIMEO`/`SO_SNDTIMEO`), and one request runs at a time.
final class BlockingConnection: Sendable {
    /// `host:port` of the peer.
    let endpoint: String
    let fd: Int32

    private init(endpoint: String, fd: Int32) {
        self.endpoint = endpoint
        self.fd = fd
    }

    /// Opens a connection; `connectTimeout` bounds the connect, `networkTimeout` every later
    /// send and receive.
    static func connect(host: String, port: Int, connectTimeout: TimeAmount, networkTimeout: TimeAmount) throws(FDFSClientError) -> BlockingConnection {
        let endpoint = StorageEndpoint(ip: host, port: port).description
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw FDFSClientError(.connectFailed, operation: "connect", endpoint: endpoint, message: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var lastError = FDFSClientError(.connectFailed, operation: "connect", endpoint: endpoint)
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            next = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            // Linux bounds a blocking connect by the send timeout.
            setTimeout(fd, SO_SNDTIMEO, connectTimeout)
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                setTimeout(fd, SO_SNDTIMEO, networkTimeout)
                setTimeout(fd, SO_RCVTIMEO, networkTimeout)
                return BlockingConnection(endpoint: endpoint, fd: fd)
            }
            let code = errno
            Glibc.close(fd)
            if code == EINPROGRESS || code == EAGAIN || code == ETIMEDOUT {
                lastError = FDFSClientError(.timeout, operation: "connect", endpoint: endpoint, message: "no connection within \(connectTimeout.nanoseconds / 1_000_000) ms")
            } else {
                lastError = FDFSClientError(.connectFailed, operation: "connect", endpoint: endpoint, message: String(cString: strerror(code)))
            }
        }
        throw lastError
    }

    /// Sets how long a receive may wait (`SO_RCVTIMEO`).
    func setReceiveTimeout(_ amount: TimeAmount) { Self.setTimeout(fd, SO_RCVTIMEO, amount) }

    private static func setTimeout(_ fd: Int32, _ option: Int32, _ amount: TimeAmount) {
        let nanoseconds = max(amount.nanoseconds, 1_000_000)
        var value = timeval(tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int(nanoseconds % 1_000_000_000 / 1000))
        setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes all of `buffer`.
    func send(_ buffer: ByteBuffer, operation: String) throws(FDFSClientError) {
        let failure: Int32? = buffer.withUnsafeReadableBytes { bytes in
            var sent = 0
            while sent < bytes.count {
                let n = Glibc.send(fd, bytes.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                sent += n
            }
            return nil
        }
        if let failure {
            let code: FDFSClientError.Code = failure == EAGAIN ? .timeout : .connectionClosed
            throw FDFSClientError(code, operation: operation, endpoint: endpoint, message: "send failed: \(String(cString: strerror(failure)))")
        }
    }

    /// Receives exactly `count` bytes into `destination`.
    func receive(into destination: UnsafeMutableRawPointer, count: Int, operation: String) throws(FDFSClientError) {
        var received = 0
        while received < count {
            let n = recv(fd, destination + received, count - received, Int32(MSG_WAITALL))
            if n > 0 {
                received += n
                continue
            }
            if n == 0 {
                throw FDFSClientError(.connectionClosed, operation: operation, endpoint: endpoint, message: "connection closed by peer after \(received) of \(count) bytes")
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN {
                throw FDFSClientError(.timeout, operation: operation, endpoint: endpoint, message: "no data within the network timeout")
            }
            throw FDFSClientError(.connectionClosed, operation: operation, endpoint: endpoint, message: "receive failed: \(String(cString: strerror(code)))")
        }
    }

    /// Reads a response header. A non-zero status becomes a ``FDFSClientError`` after its
    /// (normally empty) body has been consumed.
    func readHead(operation: String) throws(FDFSClientError) -> FDFSHeader {
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: FDFSHeader.size, alignment: 8)
        defer { bytes.deallocate() }
        try receive(into: bytes, count: FDFSHeader.size, operation: operation)
        var raw = ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: FDFSHeader.size))
        let decoded: FDFSHeader?
        do {
            decoded = try FDFSHeader.decode(from: &raw)
        } catch {
            throw FDFSClientError(.protocolViolation, operation: operation, endpoint: endpoint, message: error.description)
        }
        guard let header = decoded, header.command == .response else {
            throw FDFSClientError(.protocolViolation, operation: operation, endpoint: endpoint, message: "expected a response header")
        }
        if header.status != 0 {
            try skip(header.bodyLength, operation: operation)
            throw FDFSClientError(.serverStatus, status: FDFSStatus(rawValue: header.status), operation: operation, endpoint: endpoint)
        }
        return header
    }

    /// Reads and drops `count` bytes (the body of an error answer: small).
    private func skip(_ count: Int64, operation: String) throws(FDFSClientError) {
        guard count > 0 else { return }
        guard count <= 1 << 20 else {
            throw FDFSClientError(.protocolViolation, operation: operation, endpoint: endpoint, message: "error answer with a body of \(count) bytes")
        }
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: Int(count), alignment: 1)
        defer { scratch.deallocate() }
        try receive(into: scratch, count: Int(count), operation: operation)
    }

    /// Receives and drops `count` bytes (part of a body nobody asked to keep).
    func discard(_ count: Int64, operation: String) throws(FDFSClientError) {
        let piece = Int(min(count, 1 << 20))
        guard piece > 0 else { return }
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: piece, alignment: 16)
        defer { scratch.deallocate() }
        var left = count
        while left > 0 {
            let n = Int(min(left, Int64(piece)))
            try receive(into: scratch, count: n, operation: operation)
            left -= Int64(n)
        }
    }

    /// True when nothing arrived while the connection was idle: the peer neither closed it nor
    /// sent anything unasked.
    var isQuiet: Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 0
    }

    /// Makes a receive blocked on this connection (on another thread) return at once.
    func abort() { shutdown(fd, Int32(SHUT_RDWR)) }

    func close() { Glibc.close(fd) }
}
