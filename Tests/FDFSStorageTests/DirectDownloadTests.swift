import FDFSClient
import FDFSProtocol
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// ``FDFSClient/downloadOnce(_:from:offset:into:chunkSize:cancel:chunk:)``, the download the
/// mount's block fetches use: received with blocking calls straight into the caller's memory.
@Suite(.serialized) struct DirectDownloadTests {
    /// What a download reported: (offset, size, CRC32) per piece.
    final class Pieces: Sendable {
        let list = Mutex<[(Int, Int, UInt32)]>([])
        func add(_ offset: Int, _ bytes: UnsafeRawBufferPointer) {
            let crc = CRC32.checksum(bytes)
            list.withLock { $0.append((offset, bytes.count, crc)) }
        }
        var all: [(Int, Int, UInt32)] { list.withLock { $0 } }
    }

    func client() -> FDFSClient {
        FDFSClient(configuration: ClientConfiguration(trackers: [ServerAddress(host: "127.0.0.1", port: 1)], networkTimeout: .seconds(5)))
    }

    func content(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
    }

    /// Downloads `length` bytes at `offset` into fresh memory; the bytes and the pieces seen.
    func download(_ client: FDFSClient, _ id: FileID, from node: StorageNode, offset: Int64, length: Int, chunk: Int = 65536,
                  cancel: DownloadCancel? = nil) async throws -> (bytes: [UInt8], received: Int, pieces: [(Int, Int, UInt32)]) {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(length, 1), alignment: 4096)
        defer { memory.deallocate() }
        let pieces = Pieces()
        let received = try await client.downloadOnce(id, from: node.endpoint, offset: offset, into: ReceiveBuffer(base: memory.baseAddress!, count: length),
                                                     chunkSize: chunk, cancel: cancel) { pieces.add($0, $1) }
        return (Array(memory.prefix(received)), received, pieces.all)
    }

    @Test func bytesLandInTheBufferAndEveryChunkIsReportedOnceInOrder() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let storage = try await StorageClient.connect(node)
        defer { storage.close() }
        let big = content(3 << 20 + 17)
        let id = try await storage.upload(big, ext: "bin")
        let client = client()
        defer { Task { await client.shutdown() } }

        let whole = try await download(client, id, from: node, offset: 0, length: big.count)
        #expect(whole.received == big.count && whole.bytes == big)
        #expect(whole.pieces.map { $0.0 } == Array(stride(from: 0, to: big.count, by: 65536)))
        #expect(whole.pieces.allSatisfy { $0.1 == min(65536, big.count - $0.0) })
        #expect(whole.pieces.allSatisfy { $0.2 == CRC32.checksum(big[$0.0..<($0.0 + $0.1)]) })

        // A range within the file, pieces cut at multiples of the chunk size of the buffer.
        let part = try await download(client, id, from: node, offset: 1000, length: 300_000, chunk: 100_000)
        #expect(part.bytes == Array(big[1000..<301_000]))
        #expect(part.pieces.map { $0.0 } == [0, 100_000, 200_000])

        // The connection was reused: one more exchange on it still answers right.
        let tail = try await download(client, id, from: node, offset: Int64(big.count - 17), length: 17)
        #expect(tail.bytes == Array(big.suffix(17)) && tail.pieces.count == 1)
    }

    @Test func serverErrorsAreStatusesAndTheNextDownloadStillWorks() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let storage = try await StorageClient.connect(node)
        defer { storage.close() }
        let bytes = content(200_000)
        let id = try await storage.upload(bytes, ext: "bin")
        let gone = try await storage.upload(Array("gone".utf8), ext: "txt")
        try await storage.delete(gone)
        let client = client()
        defer { Task { await client.shutdown() } }

        do {
            _ = try await download(client, gone, from: node, offset: 0, length: 4)
            Issue.record("a deleted file was answered")
        } catch let error as FDFSClientError {
            #expect(error.code == .serverStatus && error.status == .ENOENT)
        }
        // More than the file holds: EINVAL, after which the storage closes the connection.
        do {
            _ = try await download(client, id, from: node, offset: 10, length: bytes.count)
            Issue.record("a range past the end was answered")
        } catch let error as FDFSClientError {
            #expect(error.code == .serverStatus && error.status == .EINVAL)
        }
        #expect(try await download(client, id, from: node, offset: 0, length: bytes.count).bytes == bytes)
    }

    @Test func aCancelledOrBrokenDownloadFailsAsATransportError() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let storage = try await StorageClient.connect(node)
        let bytes = content(100_000)
        let id = try await storage.upload(bytes, ext: "bin")
        storage.close()
        let client = client()
        defer { Task { await client.shutdown() } }

        let cancel = DownloadCancel()
        cancel.cancel()
        do {
            _ = try await download(client, id, from: node, offset: 0, length: bytes.count, cancel: cancel)
            Issue.record("a cancelled download ran")
        } catch let error as FDFSClientError {
            #expect(error.isTransport)
        }
        #expect(try await download(client, id, from: node, offset: 0, length: bytes.count).bytes == bytes)

        // The storage goes away: its pooled connection is found dead, and a new one refused.
        node.stop()
        do {
            _ = try await download(client, id, from: node, offset: 0, length: bytes.count)
            Issue.record("a stopped storage answered")
        } catch let error as FDFSClientError {
            #expect(error.isTransport, "\(error)")
        }
    }

    /// ``FDFSClient/downloadSpliced(_:from:offset:length:stallTimeout:deliver:)``: the body goes from
    /// the socket into a pipe; when the pipe's slots fill up before the range is in (a 1 MiB
    /// range on loopback does not fit a 1 MiB pipe: each slot holds one piece of a packet),
    /// the rest arrives in memory. Either way the bytes are the file's.
    @Test func splicedDownloadsDeliverTheRangeFromAPipeOrMemory() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let storage = try await StorageClient.connect(node)
        defer { storage.close() }
        let big = content(3 << 20)
        let id = try await storage.upload(big, ext: "bin")
        let client = client()
        defer { Task { await client.shutdown() } }

        func spliced(_ offset: Int, _ length: Int) async throws -> (bytes: [UInt8], fromPipe: Bool) {
            let taken = Mutex<(bytes: [UInt8], fromPipe: Bool)>(([], false))
            let count = try await client.downloadSpliced(id, from: node.endpoint, offset: Int64(offset), length: length) { body in
                let delivered = body.take()
                taken.withLock { $0 = delivered }
            }
            let result = taken.withLock { $0 }
            #expect(count == result.bytes.count)
            return result
        }
        let small = try await spliced(4096, 512 << 10)
        #expect(small.bytes == Array(big[4096..<(4096 + 512 << 10)]))
        #expect(small.fromPipe, "512 KiB fit the pipe")
        let whole = try await spliced(1 << 20, 1 << 20)
        #expect(whole.bytes == Array(big[(1 << 20)..<(2 << 20)]))
        #expect(!whole.fromPipe, "1 MiB from loopback does not fit a 1 MiB pipe")
        let odd = try await spliced(big.count - 1000, 1000)
        #expect(odd.bytes == Array(big.suffix(1000)))

        do throws(FDFSClientError) {
            _ = try await client.downloadSpliced(id, from: node.endpoint, offset: 0, length: SplicePipe.capacity + 1) { _ in }
            Issue.record("a range larger than a pipe was taken")
        } catch {
            #expect(error.code == .invalidArgument)
        }
        // The connection was reused after each: one more plain download still answers right.
        #expect(try await download(client, id, from: node, offset: 0, length: 100).bytes == Array(big.prefix(100)))
    }

    /// ``SplicedStream``: one DOWNLOAD_FILE taken piece by piece, in order, each piece through
    /// a pipe; skipped bytes are dropped; the connection goes back to the pool once the whole
    /// body is taken (the next stream's request goes out on it), and a stream closed before its
    /// end fails its next take.
    @Test func aSplicedStreamHandsOutItsBodyInOrderPieceByPiece() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let storage = try await StorageClient.connect(node)
        defer { storage.close() }
        let big = content(4 << 20 + 777)
        let id = try await storage.upload(big, ext: "bin")
        let client = client()
        defer { Task { await client.shutdown() } }

        /// Runs `body` on a download thread, as the mount does.
        func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
            try await withCheckedThrowingContinuation { continuation in
                FDFSClient.onDownloadThread { running in
                    #expect(running)
                    continuation.resume(with: Result { try body() })
                }
            }
        }
        func take(_ stream: SplicedStream, skipping: Int64 = 0, _ count: Int, fromPipe: Bool = true) async throws -> [UInt8] {
            try await onThread {
                let taken = Mutex<(bytes: [UInt8], fromPipe: Bool)>(([], false))
                let n = try stream.take(skipping: skipping, count: count) { body in
                    let delivered = body.take()
                    taken.withLock { $0 = delivered }
                }
                let delivered = taken.withLock { $0 }
                #expect(n == delivered.bytes.count)
                #expect(n == 0 || delivered.fromPipe == fromPipe, "\(count) bytes from a pipe: \(delivered.fromPipe)")
                return delivered.bytes
            }
        }

        let stream = client.splicedStream(id, from: node.endpoint, offset: 1000, length: Int64(big.count - 1000), stallTimeout: .seconds(2))
        var position = 1000
        for piece in [896 << 10, 4096, 1, 896 << 10] {
            #expect(try await take(stream, piece) == Array(big[position..<(position + piece)]))
            position += piece
        }
        let skipped = 123_457
        #expect(try await take(stream, skipping: Int64(skipped), 896 << 10) == Array(big[(position + skipped)..<(position + skipped + 896 << 10)]))
        position += skipped + 896 << 10
        // 1 MiB from loopback does not fit the pipe: delivered from memory, in order all the same.
        #expect(try await take(stream, 1 << 20, fromPipe: false) == Array(big[position..<(position + 1 << 20)]))
        position += 1 << 20
        // The end: what is left, then nothing.
        #expect(try await take(stream, 1 << 20) == Array(big[position...]))
        #expect(stream.remaining == 0)
        #expect(try await take(stream, 4096).isEmpty)

        // Taken whole, its connection was pooled: one more stream, closed half way.
        let second = client.splicedStream(id, from: node.endpoint, offset: 0, length: Int64(big.count), stallTimeout: .seconds(2))
        #expect(try await take(second, 100) == Array(big.prefix(100)))
        second.close()
        await #expect(throws: FDFSClientError.self) { _ = try await take(second, 100) }
        // Its connection was closed, not pooled with half a body in it: the next download is right.
        #expect(try await download(client, id, from: node, offset: 0, length: 100).bytes == Array(big.prefix(100)))
    }

    /// A silent storage fails a stream's take within the stream's stall timeout.
    @Test func aSilentStorageFailsAStreamWithinItsStallTimeout() async throws {
        let (listener, port) = try #require(Self.silentListener())
        defer { close(listener) }
        let id = try FileID("group1/M00/00/00/wKgz6lnduTeAMdrcAAEoRmXZPp870.jpeg")
        let client = client()
        defer { Task { await client.shutdown() } }
        let stream = client.splicedStream(id, from: StorageEndpoint(ip: "127.0.0.1", port: port), offset: 0, length: 1 << 20, stallTimeout: .milliseconds(300))
        let started = ContinuousClock.now
        let result: Result<Int, FDFSClientError> = await withCheckedContinuation { continuation in
            FDFSClient.onDownloadThread { _ in
                continuation.resume(returning: Result { () throws(FDFSClientError) -> Int in try stream.take(count: 4096) { _ in } })
            }
        }
        #expect(throws: FDFSClientError.self) { try result.get() }
        if case let .failure(error) = result { #expect(error.code == .timeout, "\(error)") }
        #expect(ContinuousClock.now - started < .seconds(3))
    }

    /// A storage that takes the request and sends nothing fails a spliced download within its
    /// stall timeout, not the 5 s network timeout.
    @Test func aSilentStorageFailsASplicedDownloadWithinItsStallTimeout() async throws {
        let (listener, port) = try #require(Self.silentListener())
        defer { close(listener) }
        let endpoint = StorageEndpoint(ip: "127.0.0.1", port: port)
        let id = try FileID("group1/M00/00/00/wKgz6lnduTeAMdrcAAEoRmXZPp870.jpeg")
        let client = client()
        defer { Task { await client.shutdown() } }
        let started = ContinuousClock.now
        do throws(FDFSClientError) {
            _ = try await client.downloadSpliced(id, from: endpoint, offset: 0, length: 4096, stallTimeout: .milliseconds(300)) { _ in }
            Issue.record("a silent storage answered")
        } catch {
            #expect(error.code == .timeout, "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(3))
    }

    /// A listening socket on 127.0.0.1 that nobody accepts on: the kernel completes
    /// connections to it, and nothing ever answers.
    static func silentListener() -> (fd: Int32, port: Int)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutableBytes(of: &address) { raw -> Bool in
            let pointer = raw.baseAddress!.assumingMemoryBound(to: sockaddr.self)
            return bind(fd, pointer, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, pointer, &length) == 0
        }
        guard ok else {
            close(fd)
            return nil
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}
