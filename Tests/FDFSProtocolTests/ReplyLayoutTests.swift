import FDFSProtocol
import NIOCore
import FDFSTestSupport
import Testing

/// Layout selection and rejection of malformed bodies, independent of the captured vectors.
@Suite("Reply layouts")
struct ReplyLayoutTests {
    static let g1a = StorageEndpoint(ip: "127.0.0.2", port: 23000)
    static let g1b = StorageEndpoint(ip: "127.0.0.3", port: 23000)
    static let g1c = StorageEndpoint(ip: "127.0.0.5", port: 23000)

    @Test("69 bytes: one server with 45-byte IPs, or three classic servers with 15-byte IPs")
    func ambiguousFetchLength() throws {
        let ipv6Sized = FetchTargets(group: "group1", storages: [Self.g1a]).encoded(profile: .v6_16IPv6Sized)
        let classic = FetchTargets(group: "group1", storages: [Self.g1a, Self.g1b, Self.g1c]).encoded(profile: .classic)
        #expect(ipv6Sized.readableBytes == 69 && classic.readableBytes == 69)
        #expect(try FetchTargets.decode(ipv6Sized).storages == [Self.g1a])
        #expect(try FetchTargets.decode(classic).storages == [Self.g1a, Self.g1b, Self.g1c])
        let v6 = StorageEndpoint(ip: "fe80:0000:0000:0000:0204:61ff:fe9d:f156", port: 23000)
        #expect(try FetchTargets.decode(FetchTargets(group: "g", storages: [v6]).encoded(profile: .v6_16IPv6Sized)).storages == [v6])
    }

    @Test("every FETCH layout round-trips for 1 ... 4 servers", arguments: [WireProfile.v6_16, .v6_16IPv6Sized, .classic])
    func fetchRoundTrips(profile: WireProfile) throws {
        let all = [Self.g1a, Self.g1b, Self.g1c, StorageEndpoint(ip: "10.200.30.4", port: 23000)]
        for count in 1...all.count {
            let targets = FetchTargets(group: "group1", storages: Array(all.prefix(count)))
            #expect(try FetchTargets.decode(targets.encoded(profile: profile)) == targets, "\(count) servers")
        }
    }

    @Test("replies of impossible lengths or with port 0 are refused")
    func malformedReplies() {
        #expect(throws: FDFSProtocolError.self) { try StoreTarget.decode(ByteBuffer(repeating: 0, count: 39)) }
        #expect(throws: FDFSProtocolError.self) { try StoreTargets.decode(ByteBuffer(repeating: 0, count: 17)) }
        #expect(throws: FDFSProtocolError.self) { try FetchTargets.decode(ByteBuffer(repeating: 0, count: 16)) }
        #expect(throws: FDFSProtocolError.self) { try FetchTargets.decode(ByteBuffer(repeating: 0, count: 39)) }
        #expect(throws: FDFSProtocolError.self) { try FileInfo.decode(ByteBuffer(repeating: 0, count: 41)) }
        #expect(throws: FDFSProtocolError.self) { try GroupStat.decodeList(ByteBuffer(repeating: 0, count: 112)) }
        #expect(throws: FDFSProtocolError.self) { try StorageStat.decodeList(ByteBuffer(repeating: 0, count: 488)) }
        #expect(throws: FDFSProtocolError.self) { try UploadResponse.decode(ByteBuffer(repeating: 0, count: 16)) }
    }

    @Test("malformed requests are refused by the server-side decoders")
    func malformedRequests() throws {
        let name = "M00/00/00/wKgz6lnduTeAMdrcAAEoRmXZPp870.jpeg"
        // Upload: file_size must equal pkg_len − 15; the extension charset is checked.
        let upload = UploadRequestHead(storePathIndex: 0, fileSize: 14, fileExtension: "txt").encoded()
        #expect(throws: FDFSProtocolError.self) { try UploadRequestHead.decode(upload, bodyLength: 15 + 13) }
        let badExt = UploadRequestHead(storePathIndex: -1, fileSize: 1, fileExtension: "a/b").encoded()
        #expect(throws: FDFSProtocolError.self) { try UploadRequestHead.decode(badExt, bodyLength: 16) }
        #expect(try UploadRequestHead.decode(upload, bodyLength: 29).storePathIndex == 0)
        // SET_METADATA: op flag and meta_size.
        var meta = SetMetadataRequest(file: FileRequest(group: "group1", remoteFilename: name), operation: .merge, metadata: FDFSMetadata()).encoded()
        #expect(try SetMetadataRequest.decode(meta).operation == .merge)
        meta.setInteger(UInt8(ascii: "X"), at: meta.readerIndex + 16)
        #expect(throws: FDFSProtocolError.self) { try SetMetadataRequest.decode(meta) }
        // File requests: 17 ... 143 bytes.
        #expect(throws: FDFSProtocolError.self) { try FileRequest.decode(GroupNameRequest(group: "group1").encoded()) }
        #expect(throws: FDFSProtocolError.self) {
            try FileRequest.decode(FileRequest(group: "group1", remoteFilename: String(repeating: "A", count: 128)).encoded())
        }
        // Appender commands need a name length of 44 ... 127 and consistent sizes.
        #expect(throws: FDFSProtocolError.self) { try TruncateRequest.decode(TruncateRequest(remoteFilename: "M00/00/00/short", size: 0).encoded()) }
        #expect(throws: FDFSProtocolError.self) { try TruncateRequest.decode(TruncateRequest(remoteFilename: name, size: -1).encoded()) }
        var append = AppendRequestHead(remoteFilename: name, length: 10).encoded()
        #expect(throws: FDFSProtocolError.self) { try AppendRequestHead.decode(&append, bodyLength: 16 + 44 + 9) }
        var modify = ModifyRequestHead(remoteFilename: name, offset: -1, length: 1).encoded()
        #expect(throws: FDFSProtocolError.self) { try ModifyRequestHead.decode(&modify, bodyLength: 24 + 44 + 1) }
        #expect(throws: FDFSProtocolError.self) { try DownloadRequest.decode(DownloadRequest(offset: -1, length: 0, file: FileRequest(group: "g", remoteFilename: name)).encoded()) }
        #expect(throws: FDFSProtocolError.self) { try GroupNameRequest.decode(ByteBuffer(repeating: 0x41, count: 15)) }
        #expect(throws: FDFSProtocolError.self) { try ListStorageRequest.decode(ByteBuffer(repeating: 0x41, count: 32)) }
        var slave = UploadSlaveRequestHead(masterRemoteFilename: name, fileSize: 3, prefix: "", fileExtension: "jpg").encoded()
        #expect(throws: FDFSProtocolError.self, "empty prefix") { try UploadSlaveRequestHead.decode(&slave, bodyLength: 38 + 44 + 3) }
    }
}
