import FDFSClient
import FDFSProtocol
import Foundation
import NIOCore
import Testing

/// A single `fdfs-storaged` without a tracker, driven over the storage protocol.
@Suite(.serialized) struct StandaloneStorageTests {
    static let hello = Array("hello fastdfs\n".utf8)

    func binlog(_ node: StorageNode) -> String {
        (try? String(contentsOfFile: node.basePath + "/data/sync/binlog.000", encoding: .utf8)) ?? ""
    }

    func tempFiles(_ node: StorageNode) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: node.storePath + "/data")) ?? []).filter { $0.hasSuffix(".tmp") }
    }

    @Test func uploadDownloadInfoDelete() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let client = try await StorageClient.connect(node)
        defer { client.close() }

        let id = try await client.upload(Self.hello, ext: "txt")
        #expect(id.group == "group1")
        #expect(id.remoteFilename.utf8.count == 44)
        #expect(id.remoteFilename.hasPrefix("M00/"))
        #expect(id.name.hasSuffix(".txt"))
        #expect(id.highDirectory < 4 && id.lowDirectory < 4)
        #expect(id.generated.source == .ipv4(127, 0, 0, 1))
        #expect(id.generated.size == 14)
        #expect(id.generated.crc32 == 0x0E10_BA5D)
        #expect(id.kind == .normal)
        #expect(FileManager.default.fileExists(atPath: node.localPath(id)))

        #expect(try await client.download(id) == Self.hello)
        #expect(try await client.download(id, offset: 3, length: 5) == Array("lo fa".utf8))
        #expect(try await client.download(id, offset: 14) == [])

        let info = try await client.info(id)
        #expect(info.size == 14 && info.crc32 == 0x0E10_BA5D && info.sourceIP == "127.0.0.1")
        #expect(info.createTimestamp == Int64(id.generated.timestamp))
        #expect(binlog(node).contains("\(id.generated.timestamp) C \(id.remoteFilename)\n"))

        let empty = try await client.upload([], ext: "")
        #expect(empty.name.suffix(7).allSatisfy { $0.isNumber })
        #expect(try await client.download(empty) == [])

        var big = [UInt8](repeating: 0, count: 3 << 20 + 17)
        for index in big.indices { big[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 13) }
        let bigID = try await client.upload(big, ext: "bin")
        #expect(bigID.generated.crc32 == CRC32.checksum(big))
        #expect(try await client.download(bigID) == big)
        #expect(try await client.download(bigID, offset: 1 << 20, length: 100) == Array(big[(1 << 20)..<((1 << 20) + 100)]))

        try await client.delete(id)
        #expect(!FileManager.default.fileExists(atPath: node.localPath(id)))
        #expect(binlog(node).contains(" D \(id.remoteFilename)\n"))
        let again = try await StorageClient.connect(node)
        defer { again.close() }
        #expect(await statusOf { try await again.delete(id) } == .ENOENT)
        #expect(await statusOf { _ = try await again.download(id) } == .ENOENT)
        #expect(await statusOf { _ = try await again.info(id, flags: 2) } == .ENOENT)
        // Asking for more than the file holds is EINVAL (and closes the connection).
        #expect(await statusOf { _ = try await again.download(bigID, offset: 10, length: Int64(big.count)) } == .EINVAL)
    }

    @Test func metadata() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        let id = try await client.upload(Self.hello, ext: "txt")
        #expect(await statusOf { _ = try await client.getMetadata(id) } == .ENOENT)
        try await client.setMetadata(id, [("author", "swift"), ("color", "blue")], .overwrite)
        try await client.setMetadata(id, [("color", "red"), ("size", "14")], .merge)
        #expect(try await client.getMetadata(id) == Array("author\u{02}swift\u{01}color\u{02}red\u{01}size\u{02}14".utf8))
        try await client.setMetadata(id, [("zeta", "1"), ("alpha", "2")], .overwrite)
        #expect(try await client.getMetadata(id) == Array("alpha\u{02}2\u{01}zeta\u{02}1".utf8))
        try await client.setMetadata(id, [], .merge)
        #expect(try await client.getMetadata(id) == Array("alpha\u{02}2\u{01}zeta\u{02}1".utf8))
        try await client.setMetadata(id, [], .overwrite)
        #expect(await statusOf { _ = try await client.getMetadata(id) } == .ENOENT)
        let log = binlog(node)
        #expect(log.contains(" C \(id.remoteFilename)-m\n"))
        #expect(log.contains(" U \(id.remoteFilename)-m\n"))
        #expect(log.contains(" D \(id.remoteFilename)-m\n"))
        // Deleting the file removes its metadata file too.
        try await client.setMetadata(id, [("k", "v")], .overwrite)
        try await client.delete(id)
        #expect(!FileManager.default.fileExists(atPath: node.localPath(id) + "-m"))
    }

    @Test func appenderOperationsAndRegenerate() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        let id = try await client.upload(Array("part1-".utf8), ext: "", appender: true)
        #expect(id.kind == .appender)
        try await client.append(id, Array("part2\n".utf8))
        #expect(try await client.download(id) == Array("part1-part2\n".utf8))
        try await client.modify(id, offset: 4, Array("XY".utf8))
        #expect(try await client.download(id) == Array("partXYpart2\n".utf8))
        try await client.modify(id, offset: 12, Array("++".utf8))
        #expect(try await client.download(id) == Array("partXYpart2\n++".utf8))
        try await client.truncate(id, size: 6)
        #expect(try await client.download(id) == Array("partXY".utf8))
        try await client.truncate(id, size: 6)
        try await client.append(id, [])
        let info = try await client.info(id)
        #expect(info.size == 6 && info.crc32 == CRC32.checksum(Array("partXY".utf8)))
        #expect(try await client.info(id, flags: 1).crc32 == 0)

        let log = binlog(node)
        #expect(log.contains(" A \(id.remoteFilename) 6 6\n"))
        #expect(log.contains(" M \(id.remoteFilename) 4 2\n"))
        #expect(log.contains(" T \(id.remoteFilename) 14 6\n"))

        let normal = try await client.upload(Self.hello, ext: "txt")
        let other = try await StorageClient.connect(node)
        defer { other.close() }
        #expect(await statusOf { try await other.append(normal, Array("x".utf8)) } == .EINVAL)
        let third = try await StorageClient.connect(node)
        defer { third.close() }
        #expect(await statusOf { try await third.modify(id, offset: 100, Array("x".utf8)) } == .EINVAL)

        let regenerated = try await client.regenerate(id)
        #expect(regenerated.kind == .normal)
        #expect(regenerated.generated.size == 6)
        #expect(regenerated.generated.crc32 == CRC32.checksum(Array("partXY".utf8)))
        #expect(regenerated.name.suffix(7) == id.name.suffix(7))
        #expect(regenerated.highDirectory == id.highDirectory && regenerated.lowDirectory == id.lowDirectory)
        #expect(try await client.download(regenerated) == Array("partXY".utf8))
        #expect(!FileManager.default.fileExists(atPath: node.localPath(id)))
        #expect(binlog(node).contains(" R \(regenerated.remoteFilename) \(id.remoteFilename)\n"))
    }

    @Test func slaveFiles() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        let master = try await client.upload(Self.hello, ext: "jpeg")
        let slave = try await client.uploadSlave(master: master, prefix: "_150x150", ext: "jpg", Array("small".utf8))
        #expect(slave.remoteFilename == String(master.remoteFilename.dropLast(5)) + "_150x150.jpg")
        #expect(slave.kind == .slave)
        #expect(try await client.download(slave) == Array("small".utf8))
        let info = try await client.info(slave)
        #expect(info.size == 5 && info.crc32 == CRC32.checksum(Array("small".utf8)))
        #expect(await statusOf { _ = try await client.uploadSlave(master: master, prefix: "_150x150", ext: "jpg", Array("x".utf8)) } == .EEXIST)
        try await client.delete(master)
        #expect(await statusOf { _ = try await client.uploadSlave(master: master, prefix: "_big", ext: "jpg", Array("x".utf8)) } == .ENOENT)
    }

    @Test func badInputLeavesOtherClientsWorking() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let good = try await StorageClient.connect(node)
        defer { good.close() }
        let id = try await good.upload(Self.hello, ext: "txt")

        // Random bytes.
        for seed in 0..<5 {
            let raw = try await FDFSConnection.connect(host: node.ip, port: node.port)
            var bytes = ByteBuffer()
            var state = UInt64(seed + 1) &* 0x9E37_79B9_7F4A_7C15
            for _ in 0..<4096 { state = state &* 6364136223846793005 &+ 1442695040888963407; bytes.writeInteger(UInt8(truncatingIfNeeded: state >> 33)) }
            try? await raw.write(bytes)
            _ = try? await raw.readHead(operation: "random")
            raw.close()
        }
        // A huge pkg_len for a buffered command is refused before anything is allocated.
        let huge = try await FDFSConnection.connect(host: node.ip, port: node.port)
        try await huge.send(FDFSHeader(bodyLength: 1 << 40, command: .deleteFile))
        let hugeResult = await statusOf { _ = try await huge.readHead(operation: "huge") }
        #expect(hugeResult == .EINVAL || hugeResult == nil)
        #expect(await huge.activeTest() == false)
        huge.close()
        // A negative pkg_len.
        let negative = try await FDFSConnection.connect(host: node.ip, port: node.port)
        var header = ByteBuffer()
        header.writeInteger(Int64(-5), endianness: .big)
        header.writeBytes([12, 0])
        try await negative.write(header)
        #expect(await negative.activeTest() == false)
        negative.close()
        // A truncated frame, then the peer goes away.
        let truncated = try await FDFSConnection.connect(host: node.ip, port: node.port)
        try await truncated.send(FDFSHeader(bodyLength: 60, command: .deleteFile), body: ByteBuffer(bytes: Array("group1\0\0\0\0".utf8)))
        truncated.close()
        // A truncated upload.
        let partial = try await FDFSConnection.connect(host: node.ip, port: node.port)
        var head = UploadRequestHead(storePathIndex: -1, fileSize: 1000, fileExtension: "txt").encoded()
        head.writeBytes([1, 2, 3])
        try await partial.send(FDFSHeader(bodyLength: 1015, command: .uploadFile), body: head)
        partial.close()
        // Traversal and otherwise invalid IDs, wrong group, bad store path, unknown command.
        let bad: [(String, String)] = [
            ("group1", "M00/../../../../etc/passwd"),
            ("group1", "M00/00/00/../../../../../etc/passwd"),
            ("group1", "M00/00/00/" + String(id.name.dropLast(4)) + "/../x"),
            ("group1", "../../etc/passwd"),
            ("group2", id.remoteFilename),
            ("group1", "M05/" + id.remoteFilename.dropFirst(4)),
            ("group1", "M00/0G/00/" + id.name),
            ("group1", "M00/00/00/" + id.name + "\0"),
        ]
        for (group, remote) in bad {
            for command in [FDFSCommand.deleteFile, .getMetadata, .queryFileInfo] {
                let connection = try await FDFSConnection.connect(host: node.ip, port: node.port)
                var body = ByteBuffer()
                body.writeFixedString(group, width: 16)
                body.writeString(remote)
                let status = await statusOf { _ = try await connection.call(command, body: body) }
                #expect(status == .EINVAL, "\(command) \(group)/\(remote)")
                connection.close()
            }
            let connection = try await FDFSConnection.connect(host: node.ip, port: node.port)
            var body = ByteBuffer()
            body.writeInt64(0)
            body.writeInt64(0)
            body.writeFixedString(group, width: 16)
            body.writeString(remote)
            #expect(await statusOf { _ = try await connection.call(.downloadFile, body: body) } == .EINVAL)
            connection.close()
        }
        let unknown = try await FDFSConnection.connect(host: node.ip, port: node.port)
        #expect(await statusOf { _ = try await unknown.call(FDFSCommand(rawValue: 199)) } == .EINVAL)
        unknown.close()

        // Well-framed requests of every storage command with random bodies.
        var state: UInt64 = 0x1234_5678
        func next() -> UInt8 { state = state &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: state >> 33) }
        for command: UInt8 in [9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24, 25, 34, 35, 36, 37, 38, 40, 111] {
            for round in 0..<6 {
                let connection = try await FDFSConnection.connect(host: node.ip, port: node.port, networkTimeout: .seconds(5))
                var body = ByteBuffer()
                let length = [0, 8, 16, 44, 60, 120][round] + Int(next() % 16)
                for index in 0..<length {
                    // Plausible length fields sometimes, garbage otherwise.
                    body.writeInteger(index < 8 && round % 2 == 0 ? (index == 7 ? UInt8(44) : 0) : (index >= 8 && index < 16 && round == 4 ? 0xFF : next()))
                }
                try await connection.send(FDFSHeader(bodyLength: Int64(length), command: FDFSCommand(rawValue: command), status: round == 3 ? 17 : 0), body: body)
                _ = try? await connection.readHead(operation: "fuzz")
                connection.close()
            }
        }

        // The first client and the server are fine.
        #expect(try await good.download(id) == Self.hello)
        let second = try await good.upload(Self.hello, ext: "txt")
        #expect(try await good.download(second) == Self.hello)
        #expect(node.process?.isRunning == true)
        try await waitUntil(5, "temp files removed") { tempFiles(node).isEmpty }
        #expect(FileManager.default.fileExists(atPath: "/etc/passwd"))
    }

    @Test func droppedAndKilledUploadsLeaveNothing() async throws {
        let node = StorageNode()
        defer { node.destroy() }
        try await node.start()
        let before = binlog(node)

        // The client goes away mid-upload.
        let dropped = try await FDFSConnection.connect(host: node.ip, port: node.port)
        try await dropped.send(FDFSHeader(bodyLength: 15 + (8 << 20), command: .uploadFile), body: UploadRequestHead(storePathIndex: 0, fileSize: 8 << 20, fileExtension: "bin").encoded())
        try await dropped.write(ByteBuffer(repeating: 7, count: 1 << 20))
        try await waitUntil(10, "a temp file") { !tempFiles(node).isEmpty }
        dropped.close()
        try await waitUntil(10, "temp file removed after the drop") { tempFiles(node).isEmpty }
        #expect(binlog(node) == before)

        // The server is killed mid-upload.
        let killed = try await FDFSConnection.connect(host: node.ip, port: node.port)
        try await killed.send(FDFSHeader(bodyLength: 15 + (8 << 20), command: .uploadFile), body: UploadRequestHead(storePathIndex: 0, fileSize: 8 << 20, fileExtension: "bin").encoded())
        try await killed.write(ByteBuffer(repeating: 9, count: 1 << 20))
        try await waitUntil(10, "a temp file") { !tempFiles(node).isEmpty }
        node.kill9()
        killed.close()
        #expect(!tempFiles(node).isEmpty)
        try await node.start()
        #expect(tempFiles(node).isEmpty)
        #expect(binlog(node) == before)
        let stored = try FileManager.default.subpathsOfDirectory(atPath: node.storePath + "/data").filter { $0.split(separator: "/").count == 3 }
        #expect(stored.isEmpty, "\(stored)")
        let client = try await StorageClient.connect(node)
        defer { client.close() }
        let id = try await client.upload(Self.hello, ext: "txt")
        #expect(try await client.download(id) == Self.hello)
    }
}
