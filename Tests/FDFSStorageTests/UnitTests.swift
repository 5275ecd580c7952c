import FDFSProtocol
import Foundation
import NIOCore
import Testing
import enum FDFSTestSupport.Processes
import class FDFSTestSupport.TemporaryDirectory
@testable import FDFSStorage

func hexBytes(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var chars = Array(text.utf8)[...]
    while chars.count >= 2 {
        out.append(UInt8(String(decoding: chars.prefix(2), as: UTF8.self), radix: 16)!)
        chars = chars.dropFirst(2)
    }
    return out
}

/// Splits a captured frame into header and body.
func frame(_ hex: String) throws -> (FDFSHeader, ByteBuffer) {
    var buffer = ByteBuffer(bytes: hexBytes(hex))
    let header = try #require(try FDFSHeader.decode(from: &buffer))
    return (header, buffer)
}

func testConfiguration(_ dir: String, subdirs: Int = 4, rotate: Int = 2, mode: Int = 0) throws -> StorageConfiguration {
    try StorageConfiguration(config: FDFSConfig(text: """
        base_path = \(dir)/base
        store_path0 = \(dir)/store
        subdir_count_per_path = \(subdirs)
        file_distribute_rotate_count = \(rotate)
        file_distribute_path_mode = \(mode)
        """))
}

@Suite struct NameGenerationTests {
    @Test func crcMatchesZlibAndCapture() {
        #expect(CRC32.checksum(Array("hello fastdfs\n".utf8)) == 0x0E10_BA5D)
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func generatedNameRoundTrip() throws {
        let store = TemporaryDirectory()
        defer { store.remove() }
        let configuration = try testConfiguration(store.path)
        let paths = try StorePaths(configuration: configuration)
        let temp = paths.newTempPath(0)
        FileManager.default.createFile(atPath: temp, contents: Data("hello fastdfs\n".utf8))
        let id = try NameGenerator.place(
            temp: temp, store: paths, group: "group1", pathIndex: 0, directory: (3, 1), source: .ipv4(127, 0, 0, 2),
            timestamp: 1_795_257_157, size: 14, crc32: 0x0E10_BA5D, appender: false,
            formattedExtension: NameGenerator.formattedExtension("txt"))
        #expect(!FileManager.default.fileExists(atPath: temp))
        #expect(FileManager.default.fileExists(atPath: store.path + "/store/data/03/01/" + id.name))
        let parsed = try FileID(id.description)
        #expect(parsed == id)
        #expect(parsed.remoteFilename.hasPrefix("M00/03/01/fwAAAmsBc0W"))
        #expect(parsed.generated.source == .ipv4(127, 0, 0, 2))
        #expect(parsed.generated.timestamp == 1_795_257_157)
        #expect(parsed.generated.size == 14)
        #expect(parsed.generated.sizeField >> 63 == 1)
        #expect(parsed.generated.sizeField & 0x7F80_0000_0000_0000 == 0)
        #expect(parsed.generated.crc32 == 0x0E10_BA5D)
        #expect(parsed.name.hasSuffix(".txt") && parsed.name.utf8.count == 34)
        let ext = NameGenerator.formattedExtension("")
        #expect(ext.count == 7 && ext.allSatisfy { $0.isNumber })
        #expect(NameGenerator.formattedExtension("jpeg").hasSuffix("jpeg") && NameGenerator.formattedExtension("jpeg").count == 7)

        let appender = GeneratedName(source: .ipv4(127, 0, 0, 2), timestamp: 1, size: 6, crc32: 9, appender: true, randomBits: 0x7FFFFF)
        #expect(appender.isAppender && appender.size == 0)
        // The capture's appender name decodes with the flag.
        #expect(try FileID("group2/M00/00/00/fwAABGsBc12EDqi8AAAAAA_-AcM6081600").kind == .appender)
    }

    @Test func roundRobinDirectories() throws {
        let store = TemporaryDirectory()
        defer { store.remove() }
        let paths = try StorePaths(configuration: try testConfiguration(store.path, subdirs: 2, rotate: 2))
        let picks = (0..<10).map { _ in paths.chooseDirectory(name: "") }
        let expected: [(UInt8, UInt8)] = [(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0), (1, 1), (1, 1), (0, 0), (0, 0)]
        #expect(picks.map(\.0) == expected.map(\.0) && picks.map(\.1) == expected.map(\.1))
        // The rotation survives a restart.
        _ = paths.chooseDirectory(name: "")
        _ = paths.chooseDirectory(name: "")
        let reopened = try StorePaths(configuration: try testConfiguration(store.path, subdirs: 2, rotate: 2))
        #expect(reopened.rotation.high == 1 && reopened.rotation.low == 0)
        #expect(FileManager.default.fileExists(atPath: store.path + "/store/data/01/01"))
        #expect(!FileManager.default.fileExists(atPath: store.path + "/store/data/02"))
    }

    @Test func concurrentRotationsLeaveTheLastOneOnDisk() async throws {
        let store = TemporaryDirectory()
        defer { store.remove() }
        let paths = try StorePaths(configuration: try testConfiguration(store.path, subdirs: 16, rotate: 1))
        // Every pick rotates and writes storage_stat.dat; 8 threads at once.
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<100 { _ = paths.chooseDirectory(name: "") } }
            }
        }
        let reopened = try StorePaths(configuration: try testConfiguration(store.path, subdirs: 16, rotate: 1))
        #expect(reopened.rotation.high == paths.rotation.high && reopened.rotation.low == paths.rotation.low,
                "the file holds the last rotation, not an earlier one written late")
        #expect(paths.rotation.high * 16 + paths.rotation.low == 800 % 256)
    }

    @Test func randomDirectoriesUsePJW() throws {
        #expect(StorePaths.pjwHash(Array("abc".utf8)) == 26499)
        var h: Int32 = 0
        for byte in Array("wKgz6lnduTeAMdrcAAEoRmXZPp8".utf8) {
            h = (h &<< 4) &+ Int32(byte)
            let t = h & Int32(bitPattern: 0xF000_0000)
            if t != 0 { h = (h ^ (t >> 24)) & 0x0FFF_FFFF }
        }
        #expect(StorePaths.pjwHash(Array("wKgz6lnduTeAMdrcAAEoRmXZPp8".utf8)) == h)
        let store = TemporaryDirectory()
        defer { store.remove() }
        let paths = try StorePaths(configuration: try testConfiguration(store.path, subdirs: 4, mode: 1))
        let n = Int(UInt32(bitPattern: h)) % 65536
        let pick = paths.chooseDirectory(name: "wKgz6lnduTeAMdrcAAEoRmXZPp8")
        #expect(pick.0 == UInt8(((n >> 8) & 0xFF) % 4) && pick.1 == UInt8((n & 0xFF) % 4))
    }
}

@Suite struct BinlogFileTests {
    @Test func writerReaderResumeAndRotation() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let writer = try BinlogWriter(directory: dir.path, maxFileSize: 120)
        for index in 0..<6 {
            try writer.append(BinlogRecord(timestamp: 1000 + index, operation: .create, isSource: index % 2 == 0, filename: "M00/00/00/file\(index)"))
        }
        #expect(writer.currentIndex > 0)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/binlog.000"))
        #expect(try String(contentsOfFile: dir.path + "/binlog_index.dat", encoding: .utf8).contains("current_write=\(writer.currentIndex)"))
        #expect(try String(contentsOfFile: dir.path + "/binlog.000", encoding: .utf8).hasPrefix("1000 C M00/00/00/file0\n1001 c M00/00/00/file1\n"))

        var reader = BinlogReader(directory: dir.path, index: 0, offset: 0)
        let first = reader.readBatch(limit: 2, writerIndex: writer.currentIndex)
        #expect(first.map { $0.record?.filename } == ["M00/00/00/file0", "M00/00/00/file1"])
        // Resume from the position after the first batch, as a mark file would.
        let mark = first.last!
        var resumed = BinlogReader(directory: dir.path, index: mark.nextIndex, offset: mark.nextOffset)
        let rest = resumed.readBatch(limit: 100, writerIndex: writer.currentIndex)
        #expect(rest.map { $0.record?.timestamp } == [1002, 1003, 1004, 1005])
        #expect(resumed.readBatch(limit: 10, writerIndex: writer.currentIndex).isEmpty)
        try writer.append(BinlogRecord(timestamp: 2000, operation: .delete, isSource: true, filename: "M00/00/00/file0"))
        #expect(resumed.readBatch(limit: 10, writerIndex: writer.currentIndex).map { $0.record?.line } == ["2000 D M00/00/00/file0\n"])

        // A reopened writer continues the current file.
        writer.close()
        let reopened = try BinlogWriter(directory: dir.path, maxFileSize: 120)
        #expect(reopened.currentIndex == writer.currentIndex)
    }

    @Test func markFileRoundTrip() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var mark = SyncMark()
        mark.binlogIndex = 2
        mark.binlogOffset = 4711
        mark.needSyncOld = true
        mark.untilTimestamp = 1_795_257_188
        mark.scanRowCount = 10
        mark.syncRowCount = 7
        let path = dir.path + "/" + SyncMark.fileName(peerIP: "127.0.0.3", port: 23000)
        #expect(path.hasSuffix("/127.0.0.3_23000.mark"))
        try mark.write(path: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == "binlog_index=2\nbinlog_offset=4711\nneed_sync_old=1\nsync_old_done=0\nuntil_timestamp=1795257188\nscan_row_count=10\nsync_row_count=7\n")
        #expect(SyncMark.load(path: path) == mark)
        #expect(SyncMark.load(path: dir.path + "/missing.mark") == nil)
        #expect(SyncMark(text: "binlog_offset=1\n") == nil)

        mark.skippedFiles = ["M00/00/01/b.txt", "M00/00/01/a.txt"]
        try mark.write(path: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasSuffix("sync_row_count=7\nskipped_files=M00/00/01/a.txt,M00/00/01/b.txt\n"))
        #expect(SyncMark.load(path: path) == mark)
    }
}

@Suite struct MetadataTests {
    func meta(_ pairs: [(String, String)]) throws -> FDFSMetadata { try FDFSMetadata(pairs) }

    @Test func overwriteAndMergeSemantics() throws {
        let current = try meta([("color", "blue"), ("author", "swift")])
        #expect(MetadataStore.merged(.overwrite, try meta([("b", "1"), ("a", "2")]), current: current) == (try meta([("a", "2"), ("b", "1")])))
        #expect(MetadataStore.merged(.overwrite, FDFSMetadata(), current: current) == nil)
        #expect(MetadataStore.merged(.merge, FDFSMetadata(), current: current) == current)
        #expect(MetadataStore.merged(.merge, try meta([("color", "red"), ("size", "14")]), current: current)
            == (try meta([("author", "swift"), ("color", "red"), ("size", "14")])))
        #expect(MetadataStore.merged(.merge, try meta([("x", "1")]), current: nil) == (try meta([("x", "1")])))
    }

    @Test func applyWritesSortedFileAndLogs() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let data = dir.path + "/file"
        var logged: [BinlogRecord.Operation] = []
        try MetadataStore.apply(.overwrite, try meta([("color", "blue"), ("author", "swift")]), dataPath: data) { logged.append($0) }
        #expect(MetadataStore.read(data + "-m") == Array("author\u{02}swift\u{01}color\u{02}blue".utf8))
        try MetadataStore.apply(.merge, try meta([("color", "red"), ("size", "14")]), dataPath: data) { logged.append($0) }
        #expect(MetadataStore.read(data + "-m") == Array("author\u{02}swift\u{01}color\u{02}red\u{01}size\u{02}14".utf8))
        try MetadataStore.apply(.merge, FDFSMetadata(), dataPath: data) { logged.append($0) }
        try MetadataStore.apply(.overwrite, FDFSMetadata(), dataPath: data) { logged.append($0) }
        #expect(MetadataStore.read(data + "-m") == nil)
        try MetadataStore.apply(.overwrite, FDFSMetadata(), dataPath: data) { logged.append($0) }
        #expect(logged == [.create, .update, .delete])
    }
}

@Suite struct SyncCodecTests {
    // Layouts as captured in 22_group1_replication and 23_new_storage_full_sync (FastDFS 6.16.1).

    @Test func syncCreateFromCapture() throws {
        let name = "M00/00/00/fwAAAmsBc86AWJMCAAAADg4Qul0726.txt"
        var body = ByteBuffer()
        body.writeInt64(44)
        body.writeInt64(14)
        body.writeInteger(UInt32(0x6B01_73CE), endianness: .big)
        body.writeBytes(hexBytes("67726f757031007f00000b0000000000"))
        body.writeString(name)
        body.writeString("hello fastdfs\n")
        #expect(body.readableBytes == 94)
        var head = body
        let decoded = try SyncFileHead.decode(&head, bodyLength: 94, contentFollows: true)
        #expect(decoded == SyncFileHead(remoteFilename: name, fileSize: 14, timestamp: 0x6B01_73CE, group: "group1"))
        #expect(Array(head.readableBytesView) == Array("hello fastdfs\n".utf8))
        var encoded = decoded.encoded()
        encoded.writeString("hello fastdfs\n")
        #expect(encoded.readableBytes == 94)
        #expect(Array(encoded.readableBytesView.prefix(27)) == Array(body.readableBytesView.prefix(27)))
        var noContent = decoded.encoded()
        #expect(throws: FDFSProtocolError.self) { try SyncFileHead.decode(&noContent, bodyLength: 94, contentFollows: false) }
        var exact = decoded.encoded()
        #expect(try SyncFileHead.decode(&exact, bodyLength: 80, contentFollows: false).fileSize == 14)
    }

    @Test func syncDeleteAppendTruncateFromCapture() throws {
        var full = ByteBuffer(bytes: hexBytes("6b0173d4") + Array("group1".utf8) + [UInt8](repeating: 0, count: 10))
        full.writeString("M00/00/00/fwAAAmsBc86AWJMCAAAADg4Qul0726.txt")
        #expect(full.readableBytes == 64)
        let request = try SyncDeleteRequest.decode(full)
        #expect(request == SyncDeleteRequest(timestamp: 0x6B01_73D4, group: "group1", remoteFilename: "M00/00/00/fwAAAmsBc86AWJMCAAAADg4Qul0726.txt"))
        #expect(request.encoded() == full)

        // SYNC_APPEND (25) of 23_new_storage_full_sync: offset 6, length 6, "part2\n".
        let appender = "M00/00/00/fwAAAmsBcdCEeDjYAAAAAA_-AcM5276536"
        var append = ByteBuffer()
        append.writeInt64(44); append.writeInt64(6); append.writeInt64(6)
        append.writeInteger(UInt32(0x6B01_71D0), endianness: .big)
        append.writeFixedString("group1", width: 16)
        append.writeString(appender)
        append.writeString("part2\n")
        #expect(append.readableBytes == 94)
        var head = append
        let modify = try SyncModifyHead.decode(&head, bodyLength: 94)
        #expect(modify == SyncModifyHead(remoteFilename: appender, offset: 6, length: 6, timestamp: 0x6B01_71D0, group: "group1"))
        #expect(try SyncModifyHead.peekNameLength(append) == 44)

        // SYNC_TRUNCATE (37) of 23: 88 bytes, garbage after the group's NUL.
        var truncate = ByteBuffer()
        truncate.writeInt64(44); truncate.writeInt64(14); truncate.writeInt64(7)
        truncate.writeInteger(UInt32(0x6B01_7360), endianness: .big)
        truncate.writeBytes(Array("group1".utf8) + [0, 0] + Array("M00/00/0".utf8))
        truncate.writeString("M00/00/00/fwAAAmsBc2CEMlVtAAAAAA4Qul0828.txt")
        #expect(truncate.readableBytes == 88)
        let decoded = try SyncTruncateRequest.decode(truncate)
        #expect(decoded.group == "group1" && decoded.oldSize == 14 && decoded.newSize == 7)

        let rename = SyncRenameRequest(newFilename: "M00/00/00/a", oldFilename: "M00/00/00/bb", timestamp: 5, group: "group1")
        #expect(try SyncRenameRequest.decode(rename.encoded()) == rename)
        let link = SyncLinkRequest(destFilename: "M00/00/00/a", sourceFilename: "M00/00/00/bb", timestamp: 5, group: "group1")
        #expect(try SyncLinkRequest.decode(link.encoded()) == link)
        let report = try ReportServerIDRequest.decode(ByteBuffer(bytes: hexBytes("3132372e302e302e3300000000000000")))
        #expect(report.storageID == "127.0.0.3")
        #expect(throws: FDFSProtocolError.self) { try ReportServerIDRequest.decode(ByteBuffer(bytes: [1, 2])) }
    }
}

@Suite struct ConfigurationTests {
    @Test func readsStorageConf() throws {
        let configuration = try StorageConfiguration(config: FDFSConfig(text: """
            group_name = group7
            bind_addr = 127.0.0.3
            port = 23001
            base_path = /tmp/fdfs-x
            store_path_count = 2
            store_path0 = /tmp/a
            store_path1 = /tmp/b
            tracker_server = 127.0.0.2:22122
            tracker_server = 127.0.0.9
            buff_size = 64KB
            allow_hosts = 127.0.0.[1-3]
            allow_hosts = 10.0.0.0/8
            http.server_port = 8080
            http.anti_steal.check_token = true
            http.anti_steal.secret_key = FastDFS1234567890
            mystery_key = 1
            """, file: "storage.conf"))
        #expect(configuration.group == "group7")
        #expect(configuration.storePaths == ["/tmp/a", "/tmp/b"])
        #expect(configuration.trackers.map(\.description) == ["127.0.0.2:22122", "127.0.0.9:22122"])
        #expect(configuration.buffSize == 64 << 10)
        #expect(configuration.allowHosts.allows("127.0.0.2") && configuration.allowHosts.allows("10.1.2.3"))
        #expect(!configuration.allowHosts.allows("127.0.0.4"))
        #expect(configuration.antiSteal?.secretKey == "FastDFS1234567890" && configuration.antiSteal?.tokenTTL == 600)
        #expect(configuration.warnings == ["storage.conf:16: unknown key 'mystery_key' ignored"])
    }

    @Test func httpConfInclude() throws {
        let config = try FDFSConfig(text: "group_name = group1\n#include http.conf\n", file: "/etc/fdfs/storage.conf") { path in
            guard path == "/etc/fdfs/http.conf" else { throw TestFailure("unexpected include \(path)") }
            return "http.anti_steal.check_token = true\nhttp.anti_steal.secret_key = k\nhttp.anti_steal.token_ttl = 900\nhttp.mime_types_filename = mime.types\n"
        }
        let configuration = try StorageConfiguration(config: config)
        #expect(configuration.antiSteal == StorageConfiguration.AntiStealSettings(secretKey: "k", tokenTTL: 900))
        #expect(configuration.warnings.isEmpty)
    }

    /// Every key the parser reads is used, not "unknown key ignored" (max_connections was).
    @Test func keysInUseAreNotUnknown() throws {
        let configuration = try StorageConfiguration(config: FDFSConfig(text: """
            group_name = group1
            bind_addr = 127.0.0.1
            port = 23000
            base_path = /tmp/fdfs-x
            store_path_count = 1
            store_path0 = /tmp/a
            subdir_count_per_path = 16
            tracker_server = 127.0.0.2:22122
            heart_beat_interval = 5
            stat_report_interval = 60
            sync_wait_msec = 50
            connect_timeout = 5
            network_timeout = 20
            max_connections = 64
            upload_priority = 10
            write_mark_file_freq = 500
            buff_size = 256KB
            allow_hosts = *
            file_distribute_path_mode = 0
            file_distribute_rotate_count = 100
            http.server_port = 8080
            http.default_content_type = text/plain
            storage_sync_file_max_delay = 3600
            metrics_port = 9100
            """, file: "storage.conf"))
        #expect(configuration.maxConnections == 64)
        #expect(configuration.warnings.isEmpty)
    }

    @Test func daemonRefusesBadConfig() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try "# storage\nsubdir_count_per_path = 300\n".write(toFile: dir.path + "/storage.conf", atomically: true, encoding: .utf8)
        let result = try Processes.run(try Processes.builtExecutable("fdfs-storaged"), [dir.path + "/storage.conf"])
        let output = result.stderr
        #expect(result.status == 1)
        #expect(output.contains(dir.path + "/storage.conf:2:"), "\(output)")
    }

    @Test func badValuesNameFileAndLine() throws {
        for (text, line) in [("port = 70000", 2), ("subdir_count_per_path = 0", 2), ("group_name = bad-group", 2), ("heart_beat_interval = soon", 2), ("store_path_count = 2\nstore_path0 = /a", 2)] {
            do {
                _ = try StorageConfiguration(config: FDFSConfig(text: "# comment\n" + text, file: "/etc/fdfs/storage.conf"))
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.message.hasPrefix("/etc/fdfs/storage.conf:\(line):"), "\(error.message)")
            }
        }
    }
}
