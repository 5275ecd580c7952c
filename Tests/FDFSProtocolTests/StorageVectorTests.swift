import FDFSProtocol
import NIOCore
import FDFSTestSupport
import Testing

/// Client-facing storage commands (11–15, 21–24, 34, 36) against the captured frames.
/// REGENERATE_APPENDER_FILENAME (38) does not occur in the vectors.
@Suite("Storage vectors")
struct StorageVectorTests {
    static let commands: Set<Int> = [11, 12, 13, 14, 15, 21, 22, 23, 24, 34, 36]

    /// The request our encoder builds from the annotated values (content included), or nil when
    /// `cmd` is not a storage client command.
    static func encodeRequest(_ request: VectorFrame) throws -> [UInt8]? {
        let a = request.parsed
        let command = FDFSCommand(rawValue: UInt8(request.cmd))
        func file() throws -> FileRequest {
            FileRequest(group: try #require(a.string("group")), remoteFilename: try #require(a.string("filename")))
        }
        func content() throws -> ByteBuffer { ByteBuffer(bytes: try #require(a.bytes("content"))) }
        switch request.cmd {
        case 11, 23:
            let head = UploadRequestHead(
                storePathIndex: Int8(try #require(a.int("store_path_index"))),
                fileSize: Int64(try #require(a.int("file_size"))), fileExtension: try #require(a.string("ext")))
            return frame(command, head.encoded(), try content())
        case 21:
            let head = UploadSlaveRequestHead(
                masterRemoteFilename: try #require(a.string("master")), fileSize: Int64(try #require(a.int("file_size"))),
                prefix: try #require(a.string("prefix")), fileExtension: try #require(a.string("ext")))
            return frame(command, head.encoded(), try content())
        case 12, 15, 22:
            return frame(command, try file().encoded())
        case 13:
            let op: MetadataOperation = try #require(a.string("op_flag")) == "O" ? .overwrite : .merge
            let meta = FDFSMetadata.decode(ByteBuffer(bytes: try #require(a.bytes("meta"))))
            return frame(command, SetMetadataRequest(file: try file(), operation: op, metadata: meta).encoded())
        case 14:
            let download = DownloadRequest(
                offset: Int64(try #require(a.int("offset"))), length: Int64(try #require(a.int("bytes"))), file: try file())
            return frame(command, download.encoded())
        case 24:
            let head = AppendRequestHead(remoteFilename: try #require(a.string("filename")), length: Int64(try #require(a.int("file_size"))))
            return frame(command, head.encoded(), try content())
        case 34:
            let head = ModifyRequestHead(
                remoteFilename: try #require(a.string("filename")), offset: Int64(try #require(a.int("offset"))),
                length: Int64(try #require(a.int("size"))))
            return frame(command, head.encoded(), try content())
        case 36:
            let truncate = TruncateRequest(remoteFilename: try #require(a.string("filename")), size: Int64(try #require(a.int("truncated_size"))))
            return frame(command, truncate.encoded())
        default:
            return nil
        }
    }

    @Test("every storage client command in the vectors has an encoder test")
    func coverage() throws {
        var present = Set<Int>()
        for file in try Vectors.loadAll() {
            for exchange in file.exchanges(Self.commands) {
                present.insert(exchange.request.cmd)
                #expect(try Self.encodeRequest(exchange.request) != nil)
            }
        }
        #expect(present == Self.commands, "commands missing from the vectors: \(Self.commands.subtracting(present).sorted())")
    }

    @Test("requests: our encoder reproduces the captured bytes", arguments: Vectors.names)
    func requests(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges(Self.commands) {
            let expected = try #require(try Self.encodeRequest(exchange.request))
            #expect(Hex.encode(expected) == exchange.request.hex, "\(name): \(exchange.request.label)")
        }
    }

    @Test("requests: the server-side decoders read the captured bytes back", arguments: Vectors.names)
    func requestDecoders(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges(Self.commands) {
            let request = exchange.request
            let a = request.parsed
            var body = request.body
            let length = Int64(request.pkg_len)
            switch request.cmd {
            case 11, 23:
                let head = try UploadRequestHead.decode(body.readSlice(length: UploadRequestHead.size)!, bodyLength: length)
                #expect(Int(head.storePathIndex) == a.int("store_path_index") && Int(head.fileSize) == a.int("file_size"))
                #expect(head.fileExtension == a.string("ext") && body.bytes == a.bytes("content"))
            case 21:
                let head = try UploadSlaveRequestHead.decode(&body, bodyLength: length)
                #expect(head.masterRemoteFilename == a.string("master") && head.prefix == a.string("prefix"))
                #expect(head.fileExtension == a.string("ext") && Int(head.fileSize) == a.int("file_size"))
                #expect(body.bytes == a.bytes("content"), "the decoder leaves exactly the content")
            case 12, 15, 22:
                let decoded = try FileRequest.decode(body)
                #expect(decoded.group == a.string("group") && decoded.remoteFilename == a.string("filename"))
            case 13:
                let decoded = try SetMetadataRequest.decode(body)
                #expect(decoded.file.remoteFilename == a.string("filename") && decoded.file.group == a.string("group"))
                #expect(decoded.operation.rawValue == UInt8(ascii: a.string("op_flag") == "O" ? "O" : "M"))
                #expect(decoded.metadata.encoded().bytes == a.bytes("meta"))
            case 14:
                let decoded = try DownloadRequest.decode(body)
                #expect(Int(decoded.offset) == a.int("offset") && Int(decoded.length) == a.int("bytes"))
                #expect(decoded.file.remoteFilename == a.string("filename"))
            case 24:
                let head = try AppendRequestHead.decode(&body, bodyLength: length)
                #expect(head.remoteFilename == a.string("filename") && Int(head.length) == a.int("file_size"))
                #expect(body.bytes == a.bytes("content"))
            case 34:
                let head = try ModifyRequestHead.decode(&body, bodyLength: length)
                #expect(head.remoteFilename == a.string("filename") && Int(head.offset) == a.int("offset"))
                #expect(Int(head.length) == a.int("size") && body.bytes == a.bytes("content"))
            case 36:
                let decoded = try TruncateRequest.decode(body)
                #expect(decoded.remoteFilename == a.string("filename") && Int(decoded.size) == a.int("truncated_size"))
            default:
                Issue.record("unhandled command \(request.cmd)")
            }
        }
    }

    @Test("upload replies (11/21/23) name a valid file of the right kind, size, CRC and source", arguments: Vectors.names)
    func uploadReplies(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges([11, 21, 23]) {
            let request = exchange.request
            let response = try #require(exchange.response)
            let a = response.parsed
            let reply = try UploadResponse.decode(response.body)
            #expect(reply.group == a.string("group") && reply.remoteFilename == a.string("remote_filename"))
            #expect(reply.encoded().bytes == response.bodyBytes)
            let id = try reply.fileID()
            #expect(id.description == "\(reply.group)/\(reply.remoteFilename)")
            #expect(Vectors.cluster[request.dstHost]?.group == reply.group)
            let content = try #require(request.parsed.bytes("content"))
            let ext = try #require(request.parsed.string("ext"))
            #expect(id.fileExtension == ext)
            switch request.cmd {
            case 11:
                #expect(id.kind == .normal)
                #expect(id.generated.source == GeneratedName.Source(ipv4: request.dstHost))
                #expect(id.generated.size == Int64(content.count))
                #expect(id.generated.crc32 == CRC32.checksum(content))
                #expect(id.generated.sizeField >> 63 == 1, "sizes below 4 GiB carry bit 63")
                #expect(id.remoteFilename.utf8.count == FileID.normalRemoteFilenameLength)
            case 23:
                #expect(id.kind == .appender && id.generated.isAppender && !id.generated.isTrunk)
                #expect(id.generated.size == 0, "an appender's name records size 0")
                #expect(id.generated.crc32 == CRC32.checksum(content), "CRC of the initial content")
                #expect(id.generated.source == GeneratedName.Source(ipv4: request.dstHost))
            default:
                let master = try FileID(group: reply.group, remoteFilename: try #require(request.parsed.string("master")))
                let prefix = try #require(request.parsed.string("prefix"))
                #expect(id.kind == .slave)
                #expect(try master.slave(prefix: prefix, ext: ext) == id, "our slave name matches the storage's")
            }
        }
    }

    @Test("QUERY_FILE_INFO replies decode to the annotated values and re-encode byte for byte", arguments: Vectors.names)
    func fileInfoReplies(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges([22]) {
            let response = try #require(exchange.response)
            let a = response.parsed
            if response.status != 0 {
                #expect(response.status == 2 && exchange.request.parsed.string("filename")?.contains("nonexistent") == true)
                continue
            }
            let info = try FileInfo.decode(response.body)
            #expect(a.ipFieldWidth == file.profile.ipFieldWidth, "file info uses the full IP width")
            #expect(Int(info.size) == a.int("file_size"))
            #expect(Int(info.createTimestamp) == a.int("create_ts"))
            #expect(Int(info.crc32) == a.int("crc32"))
            #expect(info.sourceIP == a.string("source_ip"))
            #expect(info.encoded(profile: file.profile).bytes == response.bodyBytes)
            let id = try FileRequest.decode(exchange.request.body).fileID()
            if id.kind == .normal {
                // For normal files everything is also in the name (reference §3.9).
                #expect(info.size == id.generated.size && info.crc32 == id.generated.crc32)
                #expect(info.createTimestamp == Int64(id.generated.timestamp))
                #expect(GeneratedName.Source(ipv4: info.sourceIP) == id.generated.source)
            }
        }
    }

    @Test("DOWNLOAD replies carry the annotated bytes of the requested range", arguments: Vectors.names)
    func downloadReplies(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges([14]) {
            let response = try #require(exchange.response)
            if response.status != 0 {
                #expect(response.status == 2 && response.pkg_len == 0 && name.hasPrefix("11"), "download of a deleted file")
                continue
            }
            let content = try #require(response.parsed.bytes("file content"))
            #expect(response.bodyBytes == content)
            let request = try DownloadRequest.decode(exchange.request.body)
            if request.length > 0 { #expect(Int64(content.count) == request.length) }
        }
    }

    @Test("GET_METADATA replies decode to the annotated pairs, and equal our own O-then-M merge", arguments: Vectors.names)
    func metadataReplies(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges([15]) {
            let response = try #require(exchange.response)
            let raw = try #require(response.parsed.bytes("metadata"))
            let decoded = FDFSMetadata.decode(response.body)
            let expected = raw.split(separator: 0x01).map { record in
                let parts = record.split(separator: 0x02, maxSplits: 1, omittingEmptySubsequences: false)
                return (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self))
            }
            #expect(decoded == (try FDFSMetadata(expected)))
            #expect(decoded.encoded().bytes == response.bodyBytes)
            #expect(decoded == decoded.sorted, "the storage returns metadata sorted by name")

            // Replay the SET_METADATA requests on the same file in this scenario.
            let target = try FileRequest.decode(exchange.request.body)
            var state = FDFSMetadata()
            for set in file.exchanges([13]) where set.request.t < exchange.request.t {
                let request = try SetMetadataRequest.decode(set.request.body)
                guard request.file == target, set.response?.status == 0 else { continue }
                state = request.operation == .overwrite ? request.metadata : state.merging(request.metadata)
            }
            #expect(state.sorted == decoded)
        }
    }

    @Test("header-only replies: delete, set metadata, append, modify, truncate", arguments: Vectors.names)
    func emptyReplies(name: String) throws {
        let file = try Vectors.load(name)
        for exchange in file.exchanges([12, 13, 24, 34, 36]) {
            let response = try #require(exchange.response)
            #expect(response.pkg_len == 0)
            #expect(Hex.encode(frame(.response, status: UInt8(response.status))) == response.hex)
            if response.status != 0 { #expect(exchange.request.cmd == 12 && response.status == 2, "second delete: ENOENT") }
        }
    }
}
