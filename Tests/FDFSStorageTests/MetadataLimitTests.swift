import FDFSClient
import FDFSProtocol
import class FDFSTestSupport.RawSocket
import Foundation
import NIOCore
import Testing

/// SET_METADATA with many records (issue 15 #7): it was quadratic (30 000 records: 7.9 s
/// overwrite, 12.5 s merge) and stalled uploads; bodies over `buff_size` were dropped
/// without an answer.
@Suite(.serialized) struct MetadataLimitTests {
    /// A SET_METADATA body with `count` records named `prefix` + base-36 index.
    static func body(_ id: FileID, _ operation: MetadataOperation, count: Int, prefix: String = "", value: String = "v") throws -> ByteBuffer {
        let pairs = (0..<count).map { (prefix + String($0, radix: 36), value) }
        return SetMetadataRequest(file: FileRequest(id), operation: operation, metadata: try FDFSMetadata(pairs)).encoded()
    }

    static func records(_ bytes: [UInt8]) -> Int {
        bytes.split(separator: FDFSMetadata.recordSeparator).count
    }

    @Test("30 000 records: overwrite and merge are fast and complete")
    func manyRecordsAreLinear() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        let id = try await client.upload(Array("meta".utf8), ext: "txt")
        let overwrite = try Self.body(id, .overwrite, count: 30_000)
        let merge = try Self.body(id, .merge, count: 30_000, value: "w")

        var start = Date()
        _ = try await client.connection.call(.setMetadata, body: overwrite)
        let overwriteSeconds = Date().timeIntervalSince(start)
        start = Date()
        _ = try await client.connection.call(.setMetadata, body: merge)
        let mergeSeconds = Date().timeIntervalSince(start)
        print("SET_METADATA 30000 records: overwrite \(overwriteSeconds) s, merge \(mergeSeconds) s")
        #expect(overwriteSeconds < 2)
        #expect(mergeSeconds < 2)
        let stored = try await client.getMetadata(id)
        #expect(Self.records(stored) == 30_000)
        #expect(FDFSMetadata.decode(ByteBuffer(bytes: stored))["zz"] == "w")
    }

    @Test("a body over buff_size, or a merge whose result would be, is refused with EINVAL")
    func oversizedIsRefused() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        let id = try await client.upload(Array("meta".utf8), ext: "txt")

        var big = try Self.body(id, .overwrite, count: 40_000, prefix: "name-")
        #expect(big.readableBytes > 256 * 1024)
        let socket = try RawSocket(host: node.ip, port: node.port)
        try socket.send(RawSocket.header(bodyLength: Int64(big.readableBytes), command: FDFSCommand.setMetadata.rawValue))
        try socket.send(big.readBytes(length: big.readableBytes)!)
        #expect(try socket.readResponse()?.status == FDFSStatus.EINVAL.rawValue)

        // Two merges that each fit but together would not: the second is refused, the first kept.
        _ = try await client.connection.call(.setMetadata, body: try Self.body(id, .merge, count: 20_000, prefix: "a-"))
        let again = try await StorageClient.connect(node)
        defer { again.close() }
        #expect(await statusOf { _ = try await again.connection.call(.setMetadata, body: try Self.body(id, .merge, count: 20_000, prefix: "b-")) } == .EINVAL)
        let check = try await StorageClient.connect(node)
        defer { check.close() }
        #expect(Self.records(try await check.getMetadata(id)) == 20_000)
    }

    @Test("eight large SET_METADATA requests do not stall a concurrent upload")
    func uploadsAreNotStalled() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let setup = try await StorageClient.connect(node)
        defer { setup.close() }
        let id = try await setup.upload(Array("meta".utf8), ext: "txt")
        let body = try Self.body(id, .merge, count: 30_000)
        let started = Date()
        let slowest = try await withThrowingTaskGroup(of: Double.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let client = try await StorageClient.connect(node)
                    defer { client.close() }
                    _ = try await client.connection.call(.setMetadata, body: body)
                    return 0
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(100))
                let client = try await StorageClient.connect(node)
                defer { client.close() }
                let start = Date()
                _ = try await client.upload([UInt8](repeating: 1, count: 4096), ext: "bin")
                return Date().timeIntervalSince(start)
            }
            var worst = 0.0
            for try await seconds in group { worst = max(worst, seconds) }
            return worst
        }
        print("upload during 8 x SET_METADATA(30000): \(slowest) s; all done after \(Date().timeIntervalSince(started)) s")
        #expect(slowest < 2)
    }
}
