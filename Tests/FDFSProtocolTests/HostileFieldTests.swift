import FDFSProtocol
import NIOCore
import Testing

/// Inputs the decoder fuzzing found decoded into values that could not be sent back as they
/// came (invalid UTF-8 turned into U+FFFD, NULs inside names, an empty storage ID): each is
/// now refused as malformed.
@Suite struct HostileFieldTests {
    func body(_ parts: [UInt8]...) -> ByteBuffer { ByteBuffer(bytes: parts.flatMap { $0 }) }
    func padded(_ text: String, _ width: Int) -> [UInt8] { Array(text.utf8) + [UInt8](repeating: 0, count: width - text.utf8.count) }

    @Test func fixedFieldsMustBeUTF8() {
        #expect(throws: FDFSProtocolError.self) { try GroupNameRequest.decode(body([0x67, 0xFF, 0xFE] + [UInt8](repeating: 0, count: 13))) }
        #expect(throws: Never.self) { try GroupNameRequest.decode(body(padded("group1", 16))) }
        // Bytes after the first NUL are padding, whatever they are.
        #expect(throws: Never.self) { try GroupNameRequest.decode(body(Array("group1".utf8) + [0, 0xFF] + [UInt8](repeating: 0, count: 8))) }
    }

    @Test func remoteFilenamesMustBeTextWithoutNUL() {
        let name = "M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt"
        #expect(throws: Never.self) { try FileRequest.decode(body(padded("group1", 16), Array(name.utf8))) }
        #expect(throws: FDFSProtocolError.self) { try FileRequest.decode(body(padded("group1", 16), [0], Array(name.utf8))) }
        #expect(throws: FDFSProtocolError.self) { try FileRequest.decode(body(padded("group1", 16), Array(name.utf8), [0xC3])) }
        var delete = ByteBuffer()
        delete.writeInteger(UInt32(1), endianness: .big)
        delete.writeBytes(padded("group1", 16))
        delete.writeBytes(Array(name.utf8) + [0, 0x41])
        #expect(throws: FDFSProtocolError.self) { try SyncDeleteRequest.decode(delete) }
    }

    @Test func storageIDsAreTextAndDeleteStorageNamesOne() throws {
        #expect(throws: FDFSProtocolError.self) { try DeleteStorageRequest.decode(body(padded("group1", 16), [0, 0, 0])) }
        #expect(try DeleteStorageRequest.decode(body(padded("group1", 16), Array("100001".utf8))).storageID == "100001")
        #expect(throws: FDFSProtocolError.self) { try ListStorageRequest.decode(body(padded("group1", 16), [0xE9, 0x41])) }
        #expect(try ListStorageRequest.decode(body(padded("group1", 16), [0, 0])).storageID == nil)
        // An ID of multi-byte characters is cut to 15 bytes when encoded, not 15 characters.
        let encoded = ListStorageRequest(group: "group1", storageID: String(repeating: "é", count: 10)).encoded()
        #expect(encoded.readableBytes <= 31)
    }

    /// Found by libFuzzer (`Scripts/fuzz`, target upload-head): a head checked against a very
    /// negative pkg_len overflowed `pkg_len - 15` and trapped. The frame decoder never passes
    /// one, but a pure decoder must refuse it rather than crash.
    @Test func headsRefuseANegativeFrameLength() {
        let upload = body([0], [0, 0, 0, 0, 0, 0, 0, 1], padded("txt", 6))
        #expect(throws: FDFSProtocolError.self) { try UploadRequestHead.decode(upload, bodyLength: Int64.min + 3) }
        var append = body([0, 0, 0, 0, 0, 0, 0, 4], [0, 0, 0, 0, 0, 0, 0, 1], Array("abcd".utf8))
        #expect(throws: FDFSProtocolError.self) { try AppendRequestHead.decode(&append, bodyLength: Int64.min) }
        var modify = body([0, 0, 0, 0, 0, 0, 0, 4], [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1], Array("abcd".utf8))
        #expect(throws: FDFSProtocolError.self) { try ModifyRequestHead.decode(&modify, bodyLength: Int64.min + 7) }
    }
}
