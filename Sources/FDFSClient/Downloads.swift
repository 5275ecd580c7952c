import FDFSProtocol
import NIOCore

extension FDFSClient {
    /// Streams `length` bytes of `id` from `offset` (0 = to the end) into `sink`, chunk by chunk.
    ///
    /// The first storage comes from QUERY_FETCH_ONE. If it fails (connection error, timeout,
    /// closed mid-body, or ENOENT because it has no copy yet), the download goes on from the
    /// next storage that QUERY_FETCH_ALL names, then from the group's other ACTIVE members
    /// (``TrackerClient/moreReadTargets(_:excluding:)``), from the byte where it stopped. Errors thrown
    /// by `sink` end the download at once. Returns the number of bytes delivered.
    @discardableResult
    public func download(
        _ id: FileID, offset: Int64 = 0, length: Int64 = 0,
        preferring preferred: StorageEndpoint? = nil,
        into sink: (ByteBuffer) async throws(FDFSClientError) -> Void
    ) async throws(FDFSClientError) -> Int64 {
        guard offset >= 0, length >= 0 else {
            throw FDFSClientError(.invalidArgument, operation: "DOWNLOAD_FILE", message: "negative offset or length")
        }
        var delivered: Int64 = 0
        var tried: [StorageEndpoint] = []
        var candidates: [StorageEndpoint] = []
        if let preferred { candidates = [preferred] } else { candidates = [try await tracker.queryFetch(id)] }
        var firstError: FDFSClientError?
        while true {
            guard let endpoint = candidates.first(where: { !tried.contains($0) }) else {
                let fresh = await tracker.moreReadTargets(id, excluding: tried)
                guard !fresh.isEmpty else { throw firstError! }
                candidates = fresh
                continue
            }
            tried.append(endpoint)
            do {
                try await downloadOnce(id, from: endpoint, offset: offset + delivered, length: length == 0 ? 0 : length - delivered) { chunk throws(FDFSClientError) in
                    delivered += Int64(chunk.readableBytes)
                    try await sink(chunk)
                }
                return delivered
            } catch {
                guard error.isTransport || error.status == .ENOENT, error.code != .localIO else { throw error }
                if length != 0 && delivered == length { return delivered }
                logger.warning("download of \(id) from \(endpoint) failed after \(delivered) bytes (\(error)); trying another storage")
                if firstError == nil { firstError = error }
            }
        }
    }

    /// One DOWNLOAD_FILE exchange with one storage.
    public func downloadOnce(
        _ id: FileID, from endpoint: StorageEndpoint, offset: Int64, length: Int64,
        into sink: (ByteBuffer) async throws(FDFSClientError) -> Void
    ) async throws(FDFSClientError) {
        let request = DownloadRequest(offset: offset, length: length, file: FileRequest(id))
        try await withStorage(endpoint) { connection throws(FDFSClientError) in
            let body = request.encoded()
            try await connection.send(FDFSHeader(bodyLength: Int64(body.readableBytes), command: .downloadFile), body: body)
            let head = try await connection.readHead(operation: "DOWNLOAD_FILE")
            if length > 0 && head.bodyLength > length {
                connection.close()
                throw FDFSClientError(.protocolViolation, operation: "DOWNLOAD_FILE", endpoint: endpoint.description, message: "server announced \(head.bodyLength) bytes, \(length) asked")
            }
            var received: Int64 = 0
            while let chunk = try await connection.readChunk(operation: "DOWNLOAD_FILE") {
                received += Int64(chunk.readableBytes)
                do throws(FDFSClientError) {
                    try await sink(chunk)
                } catch {
                    connection.close()
                    throw error
                }
            }
            if received != head.bodyLength {
                throw FDFSClientError(.connectionClosed, operation: "DOWNLOAD_FILE", endpoint: endpoint.description, message: "got \(received) of \(head.bodyLength) bytes")
            }
        }
    }

    /// Downloads into memory. `maxSize` guards against unexpectedly large files.
    public func download(_ id: FileID, offset: Int64 = 0, length: Int64 = 0, maxSize: Int = 64 << 20) async throws(FDFSClientError) -> ByteBuffer {
        var result = ByteBuffer()
        try await download(id, offset: offset, length: length) { chunk throws(FDFSClientError) in
            guard result.readableBytes + chunk.readableBytes <= maxSize else {
                throw FDFSClientError(.invalidArgument, operation: "DOWNLOAD_FILE", message: "file is larger than \(maxSize) bytes; download to a file instead")
            }
            var chunk = chunk
            result.writeBuffer(&chunk)
        }
        return result
    }

    /// Downloads into a local file (created or truncated), streamed.
    @discardableResult
    public func download(_ id: FileID, toFile path: String, offset: Int64 = 0, length: Int64 = 0) async throws(FDFSClientError) -> Int64 {
        let file = try LocalFile(createForWriting: path, operation: "DOWNLOAD_FILE")
        defer { file.close() }
        return try await download(id, offset: offset, length: length) { chunk throws(FDFSClientError) in
            try chunk.withUnsafeReadableBytes { bytes throws(FDFSClientError) in try file.write(bytes, operation: "DOWNLOAD_FILE") }
        }
    }

    /// The bytes of `id` as an async sequence of chunks (with the same failover).
    public func downloadStream(_ id: FileID, offset: Int64 = 0, length: Int64 = 0) -> AsyncThrowingStream<ByteBuffer, any Error> {
        let (stream, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream(bufferingPolicy: .bufferingOldest(16))
        let task = Task {
            do {
                try await self.download(id, offset: offset, length: length) { chunk throws(FDFSClientError) in
                    // Wait while the consumer is behind, so memory stays bounded.
                    while case .dropped = continuation.yield(chunk) {
                        try? await Task.sleep(for: .milliseconds(1))
                        if Task.isCancelled { throw FDFSClientError(.localIO, operation: "DOWNLOAD_FILE", message: "cancelled") }
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
