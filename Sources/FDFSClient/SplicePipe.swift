import CPipe
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A pipe that a spliced download fills with a storage's bytes (``SplicedStream``),
/// for a consumer that moves them on from its read end without reading them (the mount's
/// `fuse_reply_data`). Holds up to ``SplicePipe/capacity`` bytes: the kernel's `pipe-max-size`
/// default, the most an unprivileged process may ask for.
public final class SplicePipe: Sendable {
    /// Bytes one pipe holds, and so the largest spliced download.
    public static let capacity = 1 << 20

    /// Where the consumer takes the bytes from.
    public let readEnd: Int32
    let writeEnd: Int32

    private init(readEnd: Int32, writeEnd: Int32) {
        self.readEnd = readEnd
        self.writeEnd = writeEnd
    }

    deinit {
        Glibc.close(readEnd)
        Glibc.close(writeEnd)
    }

    /// A new pipe of ``capacity`` bytes.
    static func make() throws(FDFSClientError) -> SplicePipe {
        var ends: [Int32] = [-1, -1]
        guard fdfs_pipe(&ends) == 0 else {
            throw FDFSClientError(.localIO, operation: "pipe", message: String(cString: strerror(errno)))
        }
        let pipe = SplicePipe(readEnd: ends[0], writeEnd: ends[1])
        guard fdfs_set_pipe_size(pipe.readEnd, Int32(capacity)) >= capacity else {
            throw FDFSClientError(.localIO, operation: "pipe", message: "cannot size a pipe to \(capacity) bytes: \(String(cString: strerror(errno)))")
        }
        return pipe
    }

    /// True when the consumer took every byte (a pipe with bytes left in it is not reused).
    var isEmpty: Bool { fdfs_pipe_pending(readEnd) == 0 }

    /// Moves up to `count` bytes from `connection`'s socket into the pipe and returns how many
    /// it moved: `count`, or fewer when the pipe filled up first (each of its slots takes one
    /// piece of a received packet, so how much it holds depends on the network: about 940 KiB
    /// of 1 MiB on loopback, less behind a 1500-byte MTU); the rest is still in the socket. The
    /// socket's receive timeout bounds each wait for bytes; the pipe never makes it wait.
    func fill(from connection: BlockingConnection, count: Int, operation: String) throws(FDFSClientError) -> Int {
        var filled = 0
        while filled < count {
            let n = fdfs_splice_into_pipe(connection.fd, writeEnd, count - filled)
            if n > 0 {
                filled += n
                continue
            }
            if n == 0 {
                throw FDFSClientError(.connectionClosed, operation: operation, endpoint: connection.endpoint,
                                      message: "connection closed by peer after \(filled) of \(count) bytes")
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN {
                // The pipe is full (at once), or the receive timeout passed. With bytes in the
                // pipe it is taken as full: the rest is then received into memory, where a
                // timeout shows as one; an empty pipe is never full.
                if filled > 0 { return filled }
                throw FDFSClientError(.timeout, operation: operation, endpoint: connection.endpoint, message: "no data within the receive timeout")
            }
            throw FDFSClientError(.connectionClosed, operation: operation, endpoint: connection.endpoint,
                                  message: "splice from the socket failed: \(String(cString: strerror(code)))")
        }
        return filled
    }

    /// Reads the `count` bytes in the pipe into `destination`.
    func drain(into destination: UnsafeMutableRawPointer, count: Int) throws(FDFSClientError) {
        var taken = 0
        while taken < count {
            let n = Glibc.read(readEnd, destination + taken, count - taken)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw FDFSClientError(.localIO, operation: "pipe", message: "pipe read: \(String(cString: strerror(errno)))") }
            taken += n
        }
    }
}

/// Where a spliced download's bytes are when they are delivered.
public enum SplicedBody {
    /// `count` bytes waiting in a pipe (read end `fd`).
    case pipe(fd: Int32, count: Int)
    /// In memory, for the time of the delivery: the pipe filled up before the range was in, so
    /// the rest was received into memory after the pipe's bytes (one copy, as a plain download).
    case memory(UnsafeRawBufferPointer)

    /// Nothing (a take at the end of a body).
    public static var empty: SplicedBody { .memory(UnsafeRawBufferPointer(start: nil, count: 0)) }

    public var count: Int {
        switch self {
        case let .pipe(_, count): count
        case let .memory(bytes): bytes.count
        }
    }
}

/// Idle ``SplicePipe``s, reused across downloads (at most one per download thread is in use).
enum SplicePipes {
    private static let idle = Mutex<[SplicePipe]>([])

    static func take() throws(FDFSClientError) -> SplicePipe {
        if let pipe = idle.withLock({ $0.popLast() }) { return pipe }
        return try SplicePipe.make()
    }

    /// Keeps an emptied pipe for the next download; one with bytes left in it is closed.
    static func give(_ pipe: SplicePipe) {
        guard pipe.isEmpty else { return }
        idle.withLock { $0.append(pipe) }
    }
}

extension SplicePipe {
    /// Puts `bytes` (at most ``capacity``) into a pipe and delivers them from there: what a
    /// spliced download delivers, for backends whose bytes are in memory (tests).
    public static func deliver(_ bytes: UnsafeRawBufferPointer, _ deliver: (SplicedBody) -> Void) throws(FDFSClientError) {
        guard bytes.count <= capacity else {
            throw FDFSClientError(.invalidArgument, operation: "pipe", message: "\(bytes.count) bytes do not fit a pipe")
        }
        let pipe = try SplicePipes.take()
        defer { SplicePipes.give(pipe) }
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(pipe.writeEnd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw FDFSClientError(.localIO, operation: "pipe", message: String(cString: strerror(errno))) }
            written += n
        }
        deliver(.pipe(fd: pipe.readEnd, count: bytes.count))
    }
}
