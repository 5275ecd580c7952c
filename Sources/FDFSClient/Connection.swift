import FDFSProtocol
import NIOCore
import NIOPosix

/// One TCP connection to a tracker or storage server, carrying one request at a time.
///
/// Requests are written with ``send(_:body:)`` (and, for uploads, ``write(_:)`` or
/// ``writeFile(descriptor:offset:length:)``); answers are read with ``readHead(operation:)``
/// and ``readChunk(operation:)``, or all at once with ``call(_:body:operation:maxResponse:)``.
public final class FDFSConnection: Sendable {
    /// `host:port` of the peer.
    public let endpoint: String
    let channel: any Channel
    let inbox: FramePartInbox
    /// Longest wait for any byte of an answer.
    let networkTimeout: TimeAmount

    private init(endpoint: String, channel: any Channel, inbox: FramePartInbox, networkTimeout: TimeAmount) {
        self.endpoint = endpoint
        self.channel = channel
        self.inbox = inbox
        self.networkTimeout = networkTimeout
    }

    /// Opens a connection.
    public static func connect(
        host: String, port: Int,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: TimeAmount = .seconds(10), networkTimeout: TimeAmount = .seconds(30),
        localAddress: String? = nil
    ) async throws(FDFSClientError) -> FDFSConnection {
        let endpoint = StorageEndpoint(ip: host, port: port).description
        let inbox = FramePartInbox(highWater: 1 << 20)
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Reads of at most 256 KiB: 1 MiB socket buffers measured the same speed but, with
            // a dozen parallel block fetches, kept ~45 MiB more heap resident in fdfs-mount.
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 16 << 10, initial: 128 << 10, maximum: 256 << 10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FDFSFrameDecoder(streamResponses: true)))
                    try channel.pipeline.syncOperations.addHandler(inbox)
                }
            }
        if let localAddress {
            // Outgoing connections from a server bound to one address leave from it too, so
            // the peer sees the address the server is known by (FastDFS `client_bind`).
            do { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localAddress, port: 0)) } catch {
                throw FDFSClientError(.invalidArgument, operation: "connect", endpoint: endpoint, message: "bad local address \(localAddress)")
            }
        }
        do {
            let channel = try await bootstrap.connect(host: host, port: port).get()
            return FDFSConnection(endpoint: endpoint, channel: channel, inbox: inbox, networkTimeout: networkTimeout)
        } catch let error as ChannelError {
            if case .connectTimeout = error {
                throw FDFSClientError(.timeout, operation: "connect", endpoint: endpoint, message: "no connection within \(connectTimeout.nanoseconds / 1_000_000) ms")
            }
            throw FDFSClientError(.connectFailed, operation: "connect", endpoint: endpoint, message: "\(error)")
        } catch {
            throw FDFSClientError(.connectFailed, operation: "connect", endpoint: endpoint, message: "\(error)")
        }
    }

    /// True while the channel is open and nothing unread is pending.
    public var isActive: Bool { channel.isActive }

    /// Writes a header and an optional body (the start of a request).
    public func send(_ header: FDFSHeader, body: ByteBuffer? = nil) async throws(FDFSClientError) {
        var buffer = channel.allocator.buffer(capacity: FDFSHeader.size + (body?.readableBytes ?? 0))
        header.encode(into: &buffer)
        if var body { buffer.writeBuffer(&body) }
        try await write(buffer, operation: header.command.description)
    }

    /// Writes more request bytes.
    public func write(_ buffer: ByteBuffer, operation: String = "write") async throws(FDFSClientError) {
        do {
            try await channel.writeAndFlush(buffer)
        } catch {
            throw FDFSClientError(.connectionClosed, operation: operation, endpoint: endpoint, message: "write failed: \(error)")
        }
    }

    /// Sends `length` bytes of an open file from `offset` without copying them through user
    /// space (`sendfile`). The descriptor stays owned by the caller.
    public func writeFile(descriptor: CInt, offset: Int64, length: Int64, operation: String = "write") async throws(FDFSClientError) {
        guard length > 0 else { return }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: dup(descriptor))
        defer { try? handle.close() }
        let region = FileRegion(fileHandle: handle, readerIndex: Int(offset), endIndex: Int(offset + length))
        do {
            try await channel.writeAndFlush(region)
        } catch {
            throw FDFSClientError(.connectionClosed, operation: operation, endpoint: endpoint, message: "sendfile failed: \(error)")
        }
    }

    /// Waits for the next frame part.
    func nextPart(operation: String) async throws(FDFSClientError) -> FDFSFramePart {
        let inbox = self.inbox, timeout = networkTimeout
        let part: FDFSFramePart?
        do {
            part = try await withCheckedThrowingContinuation { continuation in
                channel.eventLoop.execute { inbox.next(continuation, timeout: timeout) }
            }
        } catch let error as FramePartInbox.TimedOut {
            throw FDFSClientError(.timeout, operation: operation, endpoint: endpoint, message: error.description)
        } catch let error as FDFSProtocolError {
            throw FDFSClientError(error.code == .truncated ? .connectionClosed : .protocolViolation, operation: operation, endpoint: endpoint, message: error.description)
        } catch {
            throw FDFSClientError(.connectionClosed, operation: operation, endpoint: endpoint, message: "\(error)")
        }
        guard let part else {
            throw FDFSClientError(.connectionClosed, operation: operation, endpoint: endpoint, message: "connection closed by peer")
        }
        return part
    }

    /// Reads a response header. A non-zero status becomes a ``FDFSClientError`` after its
    /// (normally empty) body has been consumed.
    public func readHead(operation: String) async throws(FDFSClientError) -> FDFSHeader {
        guard case let .head(header) = try await nextPart(operation: operation) else {
            throw violation(operation, "expected a header")
        }
        guard header.command == .response else {
            throw violation(operation, "response carries cmd \(header.command.rawValue), expected 100")
        }
        if header.status != 0 {
            if header.bodyLength > 0 { try await skipBody(operation: operation) } else { _ = try await nextPart(operation: operation) }
            throw FDFSClientError(.serverStatus, status: FDFSStatus(rawValue: header.status), operation: operation, endpoint: endpoint)
        }
        return header
    }

    /// Reads the next chunk of the current response body, or nil at its end.
    public func readChunk(operation: String) async throws(FDFSClientError) -> ByteBuffer? {
        switch try await nextPart(operation: operation) {
        case let .body(buffer): return buffer
        case .end: return nil
        case .head: throw violation(operation, "a new frame started inside a body")
        }
    }

    private func skipBody(operation: String) async throws(FDFSClientError) {
        while try await readChunk(operation: operation) != nil {}
    }

    /// Reads a whole response body of a known maximum size.
    public func readBody(_ header: FDFSHeader, operation: String, maxResponse: Int) async throws(FDFSClientError) -> ByteBuffer {
        guard header.bodyLength <= Int64(maxResponse) else {
            close()
            throw violation(operation, "response pkg_len \(header.bodyLength) exceeds the limit of \(maxResponse) bytes")
        }
        if header.bodyLength == 0 {
            _ = try await nextPart(operation: operation)
            return ByteBuffer()
        }
        var body = channel.allocator.buffer(capacity: Int(header.bodyLength))
        while var chunk = try await readChunk(operation: operation) { body.writeBuffer(&chunk) }
        return body
    }

    /// Sends a request whose body is in memory and returns the response body.
    public func call(
        _ command: FDFSCommand, body: ByteBuffer? = nil, status: UInt8 = 0,
        operation: String? = nil, maxResponse: Int = 1 << 20
    ) async throws(FDFSClientError) -> ByteBuffer {
        let name = operation ?? command.description
        try await send(FDFSHeader(bodyLength: Int64(body?.readableBytes ?? 0), command: command, status: status), body: body)
        let head = try await readHead(operation: name)
        return try await readBody(head, operation: name, maxResponse: maxResponse)
    }

    /// ACTIVE_TEST: true when the server answered.
    public func activeTest() async -> Bool {
        do {
            _ = try await call(.activeTest, maxResponse: 0)
            return true
        } catch {
            return false
        }
    }

    /// Sends QUIT and closes.
    public func quit() async {
        if channel.isActive {
            try? await channel.writeAndFlush(FDFSHeader(bodyLength: 0, command: .quit).encoded())
        }
        close()
    }

    /// Closes the connection at once.
    public func close() {
        channel.close(promise: nil)
    }

    private func violation(_ operation: String, _ message: String) -> FDFSClientError {
        FDFSClientError(.protocolViolation, operation: operation, endpoint: endpoint, message: message)
    }
}
