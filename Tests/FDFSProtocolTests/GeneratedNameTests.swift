import FDFSProtocol
import Foundation
import FDFSTestSupport
import Testing

/// The 20-byte record behind every generated name (reference §4.3) and its base64 form.
@Suite("Generated names")
struct GeneratedNameTests {
    @Test("the worked example of reference §4.3")
    func workedExample() throws {
        let name = try GeneratedName(encoded: "wKgz6lnduTeAMdrcAAEoRmXZPp8")
        #expect(name.source == .ipv4(192, 168, 51, 234))
        #expect(name.source.description == "192.168.51.234")
        #expect(name.timestamp == 1_507_703_095)
        #expect(name.size == 75846)
        #expect(name.crc32 == 0x65d9_3e9f)
        #expect(name.sizeField == 0x8031_dadc_0001_2846)
        #expect(!name.isAppender && !name.isTrunk)
        #expect(Hex.encode(name.bytes) == "c0a833ea59ddb9378031dadc0001284665d93e9f")
        #expect(name.encoded == "wKgz6lnduTeAMdrcAAEoRmXZPp8")
        #expect(try GeneratedName(bytes: name.bytes) == name)
    }

    @Test("a numeric storage id is written little-endian: 100001 → A1 86 01 00")
    func storageIDSource() throws {
        let name = GeneratedName(source: .storageID(100_001), timestamp: 1_700_000_000, size: 10, crc32: 7, randomBits: 0)
        #expect(Array(name.bytes.prefix(4)) == [0xA1, 0x86, 0x01, 0x00])
        let decoded = try GeneratedName(encoded: name.encoded)
        #expect(decoded.source == .storageID(100_001))
        #expect(decoded.source.description == "100001")
        #expect(try GeneratedName(bytes: [0xFF, 0xFF, 0xFF, 0x00] + Array(repeating: 0, count: 16)).source == .storageID(GeneratedName.maxServerID))
        // Above 2^24 − 1 the four bytes are an IPv4 address again.
        #expect(try GeneratedName(bytes: [0, 0, 0, 1] + Array(repeating: 0, count: 16)).source == .ipv4(0, 0, 0, 1))
        // Documented caveat: an address ending in .0 reads back as an id.
        #expect(try GeneratedName(bytes: [10, 1, 2, 0] + Array(repeating: 0, count: 16)).source == .storageID(0x02010A))
    }

    @Test("sizes below 4 GiB get bit 63 and at most 23 random bits; larger sizes are stored raw")
    func sizeField() throws {
        let small = GeneratedName(source: .ipv4(127, 0, 0, 1), timestamp: 1, size: 14, crc32: 0, randomBits: 0xFFFF_FFFF)
        #expect(small.sizeField == 0x807F_FFFF_0000_000E)
        #expect(small.size == 14)
        let max32 = GeneratedName(source: .ipv4(127, 0, 0, 1), timestamp: 1, size: Int64(UInt32.max), crc32: 0, randomBits: 5)
        #expect(max32.sizeField == 0x8000_0005_FFFF_FFFF && max32.size == Int64(UInt32.max))
        for size: Int64 in [1 << 32, 5 << 30, 1 << 40, 0x7FFF_FFFF_FFFF] {
            let big = GeneratedName(source: .ipv4(10, 0, 0, 7), timestamp: 1_600_000_000, size: size, crc32: 0xDEAD_BEEF, randomBits: 0x7F_FFFF)
            #expect(big.sizeField == UInt64(size), "no random bits and no bit 63 for \(size)")
            let back = try GeneratedName(encoded: big.encoded)
            #expect(back.size == size && back.crc32 == 0xDEAD_BEEF && back.source == .ipv4(10, 0, 0, 7))
            let id = try FileID("group1/M00/00/00/\(big.encoded)0000000")
            #expect(id.generated.size == size && id.kind == .normal)
        }
    }

    @Test("appender and trunk flags (bits 58 and 59)")
    func flags() throws {
        let appender = GeneratedName(source: .ipv4(127, 0, 0, 4), timestamp: 2, size: 6, crc32: 268_304_835, appender: true, randomBits: 0x0E_A8BC)
        #expect(appender.isAppender && !appender.isTrunk)
        #expect(appender.size == 0, "appender names record size 0")
        #expect(appender.sizeField == 0x840E_A8BC_0000_0000)
        let trunk = GeneratedName(source: .ipv4(127, 0, 0, 4), timestamp: 2, size: 1000, crc32: 9, trunk: true, randomBits: 0)
        #expect(trunk.isTrunk && !trunk.isAppender)
        #expect(trunk.sizeField == 0x8800_0000_0000_03E8 && trunk.size == 1000)
        // A trunk field without bit 63 still decodes the size from the low 32 bits.
        let bare = GeneratedName(source: .ipv4(1, 2, 3, 4), timestamp: 0, sizeField: GeneratedName.trunkFlag | 77, crc32: 0)
        #expect(bare.size == 77)
        // The appender captured in vector 08.
        let captured = try GeneratedName(encoded: "fwAABGsBc12EDqi8AAAAAA_-AcM")
        #expect(captured.isAppender && captured.source == .ipv4(127, 0, 0, 4) && captured.crc32 == CRC32.checksum(Array("part1-".utf8)))
    }

    @Test("encoded → decoded round trip for random records", arguments: 0..<8)
    func randomRoundTrip(seed: Int) throws {
        var rng = SplitMix(seed: UInt64(seed))
        let bytes = (0..<20).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let name = try GeneratedName(bytes: bytes)
        #expect(name.encoded.utf8.count == 27)
        #expect(try GeneratedName(encoded: name.encoded).bytes == bytes)
    }

    @Test("formatted extensions: (6 − L) random digits, a dot and the extension, or 7 digits")
    func formattedExtensions() {
        let digits: [UInt8] = [4, 8, 2, 9, 1, 13, 6, 0]
        #expect(GeneratedName.formattedExtension("jpg", digits: digits) == "482.jpg")
        #expect(GeneratedName.formattedExtension("jpeg", digits: digits) == "48.jpeg")
        #expect(GeneratedName.formattedExtension("tar.gz", digits: digits) == ".tar.gz")
        #expect(GeneratedName.formattedExtension("", digits: digits) == "4829136")
        #expect(GeneratedName.formattedExtension("abcdefgh", digits: digits) == ".abcdef", "cut to 6 bytes")
        for ext in ["", "a", "jpg", "jpeg", "tar.gz", "x_y-z"] {
            let formatted = GeneratedName.formattedExtension(ext, digits: digits)
            #expect(formatted.utf8.count == 7)
            let name = GeneratedName(source: .ipv4(127, 0, 0, 2), timestamp: 5, size: 1, crc32: 1, randomBits: 1)
            let id = try? FileID("g1/M01/0A/FF/\(name.encoded)\(formatted)")
            #expect(id?.fileExtension == (ext.contains(".") ? "gz" : ext), "extension of \(formatted)")
        }
    }

    @Test("base64 variant: URL-safe alphabet, no padding, '.' accepted as padding; matches Foundation")
    func base64() {
        var rng = SplitMix(seed: 42)
        for length in 0..<40 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let ours = FDFSBase64.encode(bytes)
            let foundation = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(ours == foundation)
            #expect(FDFSBase64.decode(ours) == bytes)
            #expect(FDFSBase64.decode(ours + String(repeating: ".", count: (4 - ours.count % 4) % 4)) == bytes)
        }
        #expect(FDFSBase64.decode("ab+d") == nil)
        #expect(FDFSBase64.decode("ab/d") == nil)
        #expect(FDFSBase64.decode("abc=") == nil)
        #expect(FDFSBase64.decode("a") == nil, "impossible length")
        #expect(FDFSBase64.decode("ab.d") == nil, "'.' only as trailing padding")
        #expect(FDFSBase64.decode("é") == nil)
    }
}
