import FDFSProtocol
import NIOCore
import FDFSTestSupport
import Testing

@Suite("Metadata")
struct MetadataTests {
    @Test("encodes name 0x02 value records joined by 0x01, no trailing separator")
    func encode() throws {
        let meta = try FDFSMetadata([("author", "swift"), ("color", "blue")])
        #expect(meta.encoded().bytes == Array("author\u{2}swift\u{1}color\u{2}blue".utf8))
        #expect(FDFSMetadata().encoded().readableBytes == 0)
        #expect(try FDFSMetadata([("k", "")]).encoded().bytes == [0x6B, 0x02])
    }

    @Test("decodes the wire form like the C code: records without 0x02 skipped, later duplicates win")
    func decode() throws {
        let wire = Array("b\u{2}2\u{1}\u{1}junk\u{1}a\u{2}1\u{1}b\u{2}3\u{1}e\u{2}\u{1}v\u{2}x\u{2}y".utf8)
        let meta = FDFSMetadata.decode(ByteBuffer(bytes: wire))
        #expect(meta.count == 4)
        #expect(meta.pairs.map(\.name) == ["b", "a", "e", "v"])
        #expect(meta["b"] == "3" && meta["a"] == "1" && meta["e"] == "" && meta["missing"] == nil)
        #expect(meta["v"] == "x\u{2}y", "only the first 0x02 separates")
        #expect(FDFSMetadata.decode(ByteBuffer()).isEmpty)
    }

    @Test("encode → decode round trip keeps order and content")
    func roundTrip() throws {
        let meta = try FDFSMetadata([("ext_name", "jpg"), ("width", "160"), ("height", "80"), ("ü", "ßéŋ"), ("empty", "")])
        #expect(FDFSMetadata.decode(meta.encoded()) == meta)
    }

    @Test("sorted orders names by bytes, as strcmp does")
    func sorting() throws {
        let meta = try FDFSMetadata([("size", "14"), ("author", "swift"), ("Zeta", "1"), ("é", "2"), ("color", "red"), ("a", "0")])
        #expect(meta.sorted.pairs.map(\.name) == ["Zeta", "a", "author", "color", "size", "é"])
        #expect(meta.sorted.sorted == meta.sorted)
        #expect(meta.sorted != meta, "order is part of equality")
    }

    @Test("merge replaces values of existing names, keeps the others and appends new ones")
    func merge() throws {
        let base = try FDFSMetadata([("author", "swift"), ("color", "blue")])
        let update = try FDFSMetadata([("color", "red"), ("size", "14")])
        let merged = base.merging(update)
        #expect(merged == (try FDFSMetadata([("author", "swift"), ("color", "red"), ("size", "14")])))
        #expect(base.merging(FDFSMetadata()) == base && FDFSMetadata().merging(update) == update)
        var set = base
        try set.set("author", "c")
        #expect(set["author"] == "c" && set.count == 2)
    }

    @Test("limits: names up to 64 bytes and values up to 256 bytes are accepted")
    func limits() throws {
        try FDFSMetadata.validate(name: String(repeating: "n", count: 64), value: String(repeating: "v", count: 256))
        _ = try FDFSMetadata([(String(repeating: "é", count: 32), String(repeating: "€", count: 85))]) // 64 and 255 bytes
    }

    static let invalid: [(String, String)] = [
        ("", "value"),
        ("na\u{1}me", "v"),
        ("na\u{2}me", "v"),
        ("name", "va\u{1}lue"),
        ("name", "va\u{2}lue"),
        ("\u{1}", ""),
        (String(repeating: "n", count: 65), "v"),
        ("name", String(repeating: "v", count: 257)),
        (String(repeating: "é", count: 33), "v"), // 66 bytes, 33 characters
        ("name", String(repeating: "€", count: 86)), // 258 bytes
    ]

    @Test("separators, empty names and over-long fields are refused", arguments: 0..<invalid.count)
    func rejection(index: Int) {
        let (name, value) = Self.invalid[index]
        #expect(throws: FDFSProtocolError.self) { try FDFSMetadata.validate(name: name, value: value) }
        #expect(throws: FDFSProtocolError.self) { try FDFSMetadata([(name, value)]) }
        var meta = FDFSMetadata()
        #expect(throws: FDFSProtocolError.self) { try meta.set(name, value) }
        #expect(meta.isEmpty)
        do throws(FDFSProtocolError) { try meta.set(name, value) } catch { #expect(error.code == .invalidMetadata) }
    }
}
