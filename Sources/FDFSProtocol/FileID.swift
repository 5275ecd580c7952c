/// A validated FastDFS file ID: `group/Mxx/HH/HH/name`.
///
/// Everything that arrives from outside (packets, URLs, paths in the mount) goes through
/// ``init(_:)`` or ``init(group:remoteFilename:)`` before any disk or network access.
public struct FileID: Hashable, Sendable, CustomStringConvertible {
    /// Kinds of stored file, told apart by name length and size-field flags (reference §4.6).
    public enum Kind: Sendable, Hashable {
        case normal, appender, trunk, slave
    }

    /// Longest remote filename accepted on the wire (`filename_len < 128`).
    public static let maxRemoteFilenameLength = 127
    /// Length of a normal or appender remote filename (`Mxx/HH/HH/` + 27 + 7).
    public static let normalRemoteFilenameLength = 44
    /// Length of a trunk-slot remote filename.
    public static let trunkRemoteFilenameLength = 60

    public let group: String
    /// Store path index from `Mxx` (0 ... 255).
    public let storePathIndex: Int
    /// First directory level (`HH`).
    public let highDirectory: UInt8
    /// Second directory level (`HH`).
    public let lowDirectory: UInt8
    /// The file name inside `HH/HH/`.
    public let name: String
    /// The decoded 20-byte record at the start of ``name``.
    public let generated: GeneratedName

    /// Parses `group/Mxx/HH/HH/name`.
    public init(_ text: String) throws(FDFSProtocolError) {
        guard let slash = text.utf8.firstIndex(of: UInt8(ascii: "/")) else {
            throw FDFSProtocolError(.invalidFileID, "'\(Self.printable(text))' has no group part")
        }
        let group = String(text[..<slash])
        let remote = String(text[text.index(after: slash)...])
        try self.init(group: group, remoteFilename: remote)
    }

    /// Validates a group name and a remote filename (`Mxx/HH/HH/name`).
    public init(group: String, remoteFilename remote: String) throws(FDFSProtocolError) {
        try Self.validateGroupName(group)
        let bytes = Array(remote.utf8)
        func fail(_ why: String) -> FDFSProtocolError {
            FDFSProtocolError(.invalidFileID, "'\(Self.printable(group))/\(Self.printable(remote))': \(why)")
        }
        guard bytes.count <= Self.maxRemoteFilenameLength else { throw fail("longer than \(Self.maxRemoteFilenameLength) bytes") }
        guard bytes.count >= 10 + 27 else { throw fail("too short for Mxx/HH/HH/ and a generated name") }
        guard bytes[0] == UInt8(ascii: "M"), bytes[3] == UInt8(ascii: "/"), bytes[6] == UInt8(ascii: "/"), bytes[9] == UInt8(ascii: "/"),
              let path = Self.hexByte(bytes[1], bytes[2]), let high = Self.hexByte(bytes[4], bytes[5]), let low = Self.hexByte(bytes[7], bytes[8])
        else { throw fail("does not start with Mxx/HH/HH/ in upper-case hex") }
        let nameBytes = bytes[10...]
        guard !nameBytes.contains(UInt8(ascii: "/")) else { throw fail("'/' inside the name") }
        guard !nameBytes.contains(0) else { throw fail("NUL in the name") }
        guard !Self.containsDotDot(nameBytes) else { throw fail("'..' in the name") }
        guard nameBytes.allSatisfy(Self.isNameByte) else { throw fail("characters outside [A-Za-z0-9_.-] in the name") }
        let name = String(decoding: nameBytes, as: UTF8.self)
        let generated: GeneratedName
        do {
            generated = try GeneratedName(encoded: name.prefix(27))
        } catch {
            throw fail("the first 27 characters are not a generated name")
        }
        let tail = Array(nameBytes.dropFirst(27))
        switch bytes.count {
        case Self.normalRemoteFilenameLength:
            guard Self.isFormattedExtension(tail) else { throw fail("'\(String(decoding: tail, as: UTF8.self))' is not a formatted extension") }
        case Self.trunkRemoteFilenameLength where generated.isTrunk:
            guard FDFSBase64.decode(String(decoding: tail.prefix(16), as: UTF8.self))?.count == 12,
                  Self.isFormattedExtension(Array(tail.dropFirst(16)))
            else { throw fail("bad trunk slot suffix") }
        default:
            guard bytes.count > Self.normalRemoteFilenameLength else { throw fail("wrong length \(bytes.count)") }
        }
        self.group = group
        self.storePathIndex = Int(path)
        self.highDirectory = high
        self.lowDirectory = low
        self.name = name
        self.generated = generated
    }

    /// `Mxx/HH/HH/name`, the part after the group.
    public var remoteFilename: String {
        "M\(Self.hex(UInt8(storePathIndex)))/\(Self.hex(highDirectory))/\(Self.hex(lowDirectory))/\(name)"
    }

    /// `HH/HH/name`, the path below `<store_path>/data/`.
    public var dataRelativePath: String {
        "\(Self.hex(highDirectory))/\(Self.hex(lowDirectory))/\(name)"
    }

    public var description: String { "\(group)/\(remoteFilename)" }

    /// The kind of file, as FastDFS tells them apart.
    public var kind: Kind {
        let length = remoteFilename.utf8.count
        if length > Self.trunkRemoteFilenameLength || (length > Self.normalRemoteFilenameLength && !generated.isTrunk) {
            return .slave
        }
        if generated.isTrunk { return .trunk }
        if generated.isAppender { return .appender }
        return .normal
    }

    /// The extension without the dot, or "" (from the last `.` within the last 7 characters).
    public var fileExtension: String {
        let tail = name.suffix(7)
        guard let dot = tail.lastIndex(of: ".") else { return "" }
        return String(tail[tail.index(after: dot)...])
    }

    /// The name a slave of this master gets (`fdfs_gen_slave_filename`): the master name up to
    /// its extension's dot (searched in the last 7 characters), the prefix, then `.ext`.
    public func slave(prefix: String, ext: String) throws(FDFSProtocolError) -> FileID {
        try Self.validateNamePart(prefix, what: "slave prefix", maxLength: 16, allowEmpty: false)
        try Self.validateNamePart(ext, what: "extension", maxLength: 6, allowEmpty: true)
        if prefix == "-m" && ext.isEmpty {
            throw FDFSProtocolError(.invalidName, "slave prefix '-m' with no extension collides with metadata files")
        }
        let tail = name.suffix(7)
        var base = Substring(name)
        if let dot = tail.lastIndex(of: ".") { base = name[..<dot] }
        let dottedExt = ext.isEmpty ? "" : (ext.hasPrefix(".") ? ext : "." + ext)
        let remote = "M\(Self.hex(UInt8(storePathIndex)))/\(Self.hex(highDirectory))/\(Self.hex(lowDirectory))/\(base)\(prefix)\(dottedExt)"
        return try FileID(group: group, remoteFilename: remote)
    }

    // MARK: Validation helpers

    /// Checks `[A-Za-z0-9]{1,16}` (`fdfs_validate_group_name`).
    public static func validateGroupName(_ group: String) throws(FDFSProtocolError) {
        let bytes = Array(group.utf8)
        guard (1...16).contains(bytes.count), bytes.allSatisfy({ isAlphanumeric($0) }) else {
            throw FDFSProtocolError(.invalidGroupName, "group name '\(printable(group))' must be 1 to 16 characters of [A-Za-z0-9]")
        }
    }

    /// Checks an extension or slave prefix: `[A-Za-z0-9_.-]`, at most `maxLength` bytes.
    public static func validateNamePart(_ part: String, what: String, maxLength: Int, allowEmpty: Bool) throws(FDFSProtocolError) {
        let bytes = Array(part.utf8)
        guard allowEmpty || !bytes.isEmpty else { throw FDFSProtocolError(.invalidName, "\(what) must not be empty") }
        guard bytes.count <= maxLength else { throw FDFSProtocolError(.invalidName, "\(what) '\(printable(part))' is longer than \(maxLength) bytes") }
        guard bytes.allSatisfy(isNameByte) else {
            throw FDFSProtocolError(.invalidName, "\(what) '\(printable(part))' has characters outside [A-Za-z0-9_.-]")
        }
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
    }

    private static func containsDotDot(_ bytes: ArraySlice<UInt8>) -> Bool {
        var previousDot = false
        for byte in bytes {
            let dot = byte == UInt8(ascii: ".")
            if dot && previousDot { return true }
            previousDot = dot
        }
        return false
    }

    /// `[0-9]{6-L}.ext` with 1 ≤ L ≤ 6, or 7 digits.
    private static func isFormattedExtension(_ tail: [UInt8]) -> Bool {
        guard tail.count == 7 else { return false }
        let isDigit = { (b: UInt8) in (0x30...0x39).contains(b) }
        guard let dot = tail.firstIndex(of: UInt8(ascii: ".")) else { return tail.allSatisfy(isDigit) }
        return dot < 6 && tail[..<dot].allSatisfy(isDigit) && tail[(dot + 1)...].allSatisfy(isNameByte)
    }

    private static func hexByte(_ a: UInt8, _ b: UInt8) -> UInt8? {
        guard let high = hexDigit(a), let low = hexDigit(b) else { return nil }
        return high << 4 | low
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        default: nil
        }
    }

    /// Two upper-case hex digits.
    public static func hex(_ value: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: [digits[Int(value >> 4)], digits[Int(value & 15)]], as: UTF8.self)
    }

    /// Text safe to put in an error message (control characters escaped, length capped).
    static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(160) {
            if scalar.value < 0x20 || scalar.value == 0x7F { out += "\\x" + hex(UInt8(scalar.value)) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }
}
