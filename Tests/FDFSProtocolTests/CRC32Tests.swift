import FDFSProtocol
import FDFSTestSupport
import Testing

@Suite("CRC32")
struct CRC32Tests {
    @Test("known checksums", arguments: [
        ("", 0x0000_0000),
        ("hello fastdfs\n", 0x0E10_BA5D), // = 235977309, the CRC in the captured file names
        ("123456789", 0xCBF4_3926), // the standard check value
        ("The quick brown fox jumps over the lazy dog", 0x414F_A339),
        ("part1-", 268_304_835), // vector 08: the appender's initial content
        ("part1-part2\n", 1_176_536_168), // vector 08: QUERY_FILE_INFO after the append
    ] as [(String, UInt32)])
    func known(text: String, crc: UInt32) {
        #expect(CRC32.checksum(Array(text.utf8)) == crc)
    }

    /// Lengths around the 64-byte folding threshold and large ones (values from Python's
    /// zlib.crc32 over bytes (i * 31 + 7) & 0xFF).
    @Test("the folded CRC equals zlib's", arguments: [
        (63, 2_034_968_221), (64, 2_227_724_424), (65, 887_454_700), (127, 1_250_177_418),
        (1000, 2_298_615_326), (65536, 2_079_246_634), ((1 << 20) + 5, 324_489_718),
    ] as [(Int, UInt32)])
    func matchesZlib(length: Int, crc: UInt32) {
        let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        #expect(CRC32.checksum(data) == crc)
    }

    @Test("the CRC in a captured generated name is the CRC of the uploaded content")
    func capturedName() throws {
        let id = try FileID("group1/M00/00/00/fwAAAmsBc0WALnffAAAADg4Qul0612.txt")
        #expect(id.generated.crc32 == 235_977_309)
        #expect(id.generated.crc32 == CRC32.checksum(Array("hello fastdfs\n".utf8)))
    }

    @Test("the storage's CRCs after truncate / append / modify (vector 09) match ours")
    func appenderOperations() {
        let hello = Array("hello fastdfs\n".utf8)
        let truncated = Array(hello.prefix(7)) // truncate to 7
        let appended = truncated + hello // append 14
        let modified = appended + hello // modify at offset 21 (= the end) with 14 bytes
        #expect(CRC32.checksum(truncated) == 585_170_224)
        #expect(CRC32.checksum(appended) == 1_846_670_074)
        #expect(CRC32.checksum(modified) == 1_525_074_964)
    }

    @Test("feeding in pieces equals one pass")
    func incremental() {
        var rng = SplitMix(seed: 9)
        let data = (0..<5000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for split in [0, 1, 17, 4096, 4999, 5000] {
            var crc = CRC32()
            crc.update(data[..<split])
            crc.update(data[split...])
            #expect(crc.value == CRC32.checksum(data))
        }
        var bytewise = CRC32()
        for byte in data.prefix(300) { bytewise.update([byte]) }
        #expect(bytewise.value == CRC32.checksum(data.prefix(300)))
        var raw = CRC32()
        data.withUnsafeBytes { raw.update($0) }
        #expect(raw.value == CRC32.checksum(data))
    }

    @Test("combine(crc(a), crc(b), |b|) == crc(a + b)")
    func combine() {
        var rng = SplitMix(seed: 3)
        let data = (0..<3000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for split in [0, 1, 1000, 2999, 3000] {
            let first = CRC32.checksum(data[..<split]), second = CRC32.checksum(data[split...])
            #expect(CRC32.combine(first, second, secondLength: Int64(data.count - split)) == CRC32.checksum(data))
        }
        let hello = Array("hello fastdfs\n".utf8)
        let part1 = CRC32.checksum(Array("part1-".utf8)), part2 = CRC32.checksum(Array("part2\n".utf8))
        #expect(CRC32.combine(part1, part2, secondLength: 6) == 1_176_536_168)
        #expect(CRC32.combine(CRC32.checksum(hello), 0, secondLength: 0) == CRC32.checksum(hello))
    }
}
