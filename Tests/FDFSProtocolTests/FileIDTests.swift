import FDFSProtocol
import FDFSTestSupport
import Testing

/// `group/Mxx/HH/HH/name` parsing, rendering, kinds, slave names and hostile input.
@Suite("File IDs")
struct FileIDTests {
    static let b27 = "wKgz6lnduTeAMdrcAAEoRmXZPp8"
    static let example = "group1/M00/00/00/\(b27)70.jpeg"
    static let trunkB27 = GeneratedName(source: .ipv4(10, 0, 0, 1), timestamp: 3, size: 500, crc32: 4, trunk: true, randomBits: 9).encoded

    @Test("a normal file ID parses into its parts and renders back unchanged")
    func normal() throws {
        let id = try FileID(Self.example)
        #expect(id.group == "group1" && id.storePathIndex == 0 && id.highDirectory == 0 && id.lowDirectory == 0)
        #expect(id.name == "\(Self.b27)70.jpeg")
        #expect(id.kind == .normal && id.fileExtension == "jpeg")
        #expect(id.generated.size == 75846 && id.generated.source == .ipv4(192, 168, 51, 234))
        #expect(id.description == Self.example)
        #expect(id.remoteFilename == "M00/00/00/\(Self.b27)70.jpeg")
        #expect(id.dataRelativePath == "00/00/\(Self.b27)70.jpeg")

        let other = try FileID(group: "G2", remoteFilename: "M1F/AB/0C/\(Self.b27)1234567")
        #expect(other.storePathIndex == 0x1F && other.highDirectory == 0xAB && other.lowDirectory == 0x0C)
        #expect(other.fileExtension == "" && other.description == "G2/M1F/AB/0C/\(Self.b27)1234567")
        #expect(try FileID(other.description) == other)
    }

    @Test("file IDs built from generated names round-trip through text", arguments: [0, 1, 7, 255])
    func roundTrip(pathIndex: Int) throws {
        let generated = GeneratedName(source: .storageID(100_001), timestamp: 1_795_257_157, size: 123_456, crc32: 0xABCD_EF01, randomBits: 0x1234)
        let text = "grp\(pathIndex)/M\(FileID.hex(UInt8(pathIndex)))/FE/01/\(generated.encoded)\(GeneratedName.formattedExtension("png", digits: [1, 2, 3]))"
        let id = try FileID(text)
        #expect(id.description == text && id.storePathIndex == pathIndex)
        #expect(id.generated == generated && id.fileExtension == "png" && id.kind == .normal)
    }

    @Test("appender and trunk names are recognised")
    func appenderAndTrunk() throws {
        let appender = try FileID("group2/M00/00/00/fwAABGsBc12EDqi8AAAAAA_-AcM6081600")
        #expect(appender.kind == .appender && appender.fileExtension == "")

        let trunkName = GeneratedName(source: .ipv4(10, 0, 0, 1), timestamp: 3, size: 500, crc32: 4, trunk: true, randomBits: 9)
        let slot = FDFSBase64.encode([0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 2, 0]) // trunk id 1, offset 4096, size 512
        #expect(slot.utf8.count == 16)
        let trunk = try FileID("group1/M00/00/01/\(trunkName.encoded)\(slot)000.txt")
        #expect(trunk.remoteFilename.utf8.count == FileID.trunkRemoteFilenameLength)
        #expect(trunk.kind == .trunk && trunk.generated.size == 500 && trunk.fileExtension == "txt")
        // The same length without the trunk flag is a slave name (IS_SLAVE_FILE).
        let plain = GeneratedName(source: .ipv4(10, 0, 0, 1), timestamp: 3, size: 500, crc32: 4, randomBits: 9)
        #expect(try FileID("group1/M00/00/01/\(plain.encoded)\(slot)000.txt").kind == .slave)
    }

    @Test("slave names follow fdfs_gen_slave_filename (reference §4.6 example)")
    func slaves() throws {
        let master = try FileID(Self.example)
        let slave = try master.slave(prefix: "_150x150", ext: "jpg")
        #expect(slave.remoteFilename == "M00/00/00/\(Self.b27)70_150x150.jpg")
        #expect(slave.kind == .slave && slave.group == "group1" && slave.generated == master.generated)
        #expect(try master.slave(prefix: "_150x150", ext: ".jpg") == slave, "a leading dot is kept, not doubled")
        // A slave that comes out no longer than 44 bytes cannot be told from a normal file
        // (IS_SLAVE_FILE tests length > 44), so such names are refused rather than misread.
        #expect(throws: FDFSProtocolError.self) { try master.slave(prefix: "_s", ext: "") }
        #expect(try master.slave(prefix: "_small", ext: "").remoteFilename == "M00/00/00/\(Self.b27)70_small")
        // Without an extension the base is the whole name.
        let noExt = try FileID("group1/M00/00/00/\(Self.b27)1234567")
        #expect(try noExt.slave(prefix: "-x", ext: "txt").name == "\(Self.b27)1234567-x.txt")
        #expect(try noExt.slave(prefix: "-x", ext: "").name == "\(Self.b27)1234567-x")
        // The captured one (vector 10).
        let captured = try FileID("group1/M00/00/00/fwAAA2sBc2KAHDcEAAAADg4Qul0474.txt")
        #expect(try captured.slave(prefix: "_big", ext: "txt").remoteFilename == "M00/00/00/fwAAA2sBc2KAHDcEAAAADg4Qul0474_big.txt")
        // Refusals.
        #expect(throws: FDFSProtocolError.self) { try master.slave(prefix: "", ext: "jpg") }
        #expect(throws: FDFSProtocolError.self) { try master.slave(prefix: "-m", ext: "") }
        #expect(throws: FDFSProtocolError.self) { try master.slave(prefix: "a/b", ext: "jpg") }
        #expect(throws: FDFSProtocolError.self) { try master.slave(prefix: "_x", ext: "j pg") }
        #expect(throws: FDFSProtocolError.self) { try master.slave(prefix: String(repeating: "p", count: 17), ext: "") }
        #expect(throws: FDFSProtocolError.self) { try master.slave(prefix: "_x", ext: "toolong") }
        #expect(throws: FDFSProtocolError.self, "the result would exceed 127 bytes") {
            try FileID("group1/M00/00/00/\(Self.b27)70.jpeg" + String(repeating: "s", count: 70)).slave(prefix: String(repeating: "p", count: 16), ext: "jpg")
        }
        #expect(try master.slave(prefix: "-m", ext: "txt").name.hasSuffix("70-m.txt"))
    }

    @Test("group names are [A-Za-z0-9]{1,16}")
    func groupNames() throws {
        for good in ["g", "group1", "ABCdef0123456789", "0"] { try FileID.validateGroupName(good) }
        for bad in ["", "group_1", "group-1", "group 1", "gr.oup", "grüppe", "ABCdef01234567890", "g\u{0}", "group１"] {
            #expect(throws: FDFSProtocolError.self, "\(bad)") { try FileID.validateGroupName(bad) }
        }
    }

    static let hostile: [String] = [
        "",
        "group1",
        "/M00/00/00/\(b27)70.jpeg",
        "group1/",
        "group_1/M00/00/00/\(b27)70.jpeg",
        "group12345678901234/M00/00/00/\(b27)70.jpeg",
        "grüp1/M00/00/00/\(b27)70.jpeg",
        "gro\u{0}up1/M00/00/00/\(b27)70.jpeg",
        "group1\n/M00/00/00/\(b27)70.jpeg",
        "group1/M00/00/00/../../../../etc/passwd",
        "group1/M00/00/00/\(b27)70..jpg",
        "group1/M00/00/00/\(b27)7/.jpeg",
        "group1/M00/00/00/\(b27)70\u{0}.jpg",
        "group1/m00/00/00/\(b27)70.jpeg",
        "group1/M0a/00/00/\(b27)70.jpeg",
        "group1/M00/0a/00/\(b27)70.jpeg",
        "group1/M00/00/ff/\(b27)70.jpeg",
        "group1/M0G/00/00/\(b27)70.jpeg",
        "group1/MZZ/00/00/\(b27)70.jpeg",
        "group1/M00-00/00/\(b27)70.jpeg",
        "group1//M00/00/00/\(b27)70.jpeg",
        "group1/group1/M00/00/00/\(b27)70.jpeg",
        "group1/M00/00/00/",
        "group1/M00/00/00/\(b27)",
        "group1/M00/00/00/\(b27)70.jp",
        "group1/M00/00/00/\(b27)70.jpeg/",
        "group1/M00/00/00/" + String(repeating: "A", count: 118),
        "group1/M00/00/00/wKgz6lnduTeAMdrcAAEoRmXZP+870.jpeg",
        "group1/M00/00/00/wKgz6lnduTe.MdrcAAEoRmXZPp870.jpeg",
        "group1/M00/00/00/wKgz6lnduTeAMdrcAAEoRmXZPp=70.jpeg",
        "group1/M00/00/00/wKgz6lnduTeAMdrcAAEoRmXZPp%70.jpeg",
        "group1/M00/00/00/\(b27)7a0.jpg",
        "group1/M00/00/00/\(b27)abcdefg",
        "group1/M00/00/00/\(b27)123456.",
        "group1/M00/00/00/\(b27)70 .jpg",
        "group1/M00/00/00/\(b27)70\\.jpg",
        "group1/M00/00/00/\(b27)70.jpé",
        "group1/M00/00/00/\(b27)70.jpeg\r",
        "group1/M00/00/01/\(trunkB27)AAAA.AAAAAAAAAAA000.txt",
        "group1/M00/00/00\\\(b27)70.jpeg",
        "group1/M00/00/00/\(b27)70.jpeg_with_a_long_slave_suffix/..",
        "group1/M100/00/00/\(b27)70.jpeg",
        "group1/ M00/00/00/\(b27)70.jpeg",
    ]

    @Test("hostile file IDs are rejected with FDFSProtocolError", arguments: hostile)
    func hostileIDs(text: String) {
        #expect(throws: FDFSProtocolError.self, "accepted: \(text.debugDescription)") { try FileID(text) }
    }

    @Test("the hostile table is large and every entry differs")
    func hostileTableSize() {
        #expect(Self.hostile.count >= 25 && Set(Self.hostile).count == Self.hostile.count)
    }

    @Test("error messages escape control characters")
    func printableErrors() {
        do throws(FDFSProtocolError) {
            _ = try FileID("group1/M00/00/00/\(Self.b27)70\u{0}.jpg")
            Issue.record("NUL accepted")
        } catch {
            #expect(error.code == .invalidFileID)
            #expect(error.message.contains("\\x00") && !error.message.contains("\u{0}"))
        }
    }
}
