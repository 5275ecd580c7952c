/// The 20-byte record that a storage server encodes, as 27 base64 characters, at the start of
/// every generated file name (reference §4.3): source, timestamp, size with flags, CRC32.
public struct GeneratedName: Hashable, Sendable {
    /// Where the file was first stored.
    public enum Source: Hashable, Sendable, CustomStringConvertible {
        /// The source storage's IPv4 address, octets in natural order.
        case ipv4(UInt8, UInt8, UInt8, UInt8)
        /// A numeric storage id (1 ... 16777215).
        case storageID(UInt32)

        /// Parses a dotted IPv4 address.
        public init?(ipv4 text: String) {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var octets: [UInt8] = []
            for part in parts {
                guard part.count <= 3, let value = UInt8(part) else { return nil }
                octets.append(value)
            }
            self = .ipv4(octets[0], octets[1], octets[2], octets[3])
        }

        /// Dotted IPv4 text, or the id in decimal.
        public var description: String {
            switch self {
            case let .ipv4(a, b, c, d): "\(a).\(b).\(c).\(d)"
            case let .storageID(id): "\(id)"
            }
        }
    }

    /// Bit 58 of the size field marks an appender file.
    public static let appenderFlag: UInt64 = 1 << 58
    /// Bit 59 of the size field marks a file stored in a trunk.
    public static let trunkFlag: UInt64 = 1 << 59
    /// Largest numeric storage id that can be embedded in a name.
    public static let maxServerID: UInt32 = 16_777_215

    public var source: Source
    /// Unix seconds (upload end time for normal files).
    public var timestamp: UInt32
    /// The raw 64-bit size field, flags and random bits included.
    public var sizeField: UInt64
    /// CRC32 of the content (for appender files: of the initially uploaded content).
    public var crc32: UInt32

    public init(source: Source, timestamp: UInt32, sizeField: UInt64, crc32: UInt32) {
        self.source = source
        self.timestamp = timestamp
        self.sizeField = sizeField
        self.crc32 = crc32
    }

    /// Builds the record for a new file the way the storage does (`COMBINE_RAND_FILE_SIZE`):
    /// sizes below 4 GiB get bit 63 and 23 random bits above the size; larger sizes are stored raw.
    public init(
        source: Source, timestamp: UInt32, size: Int64, crc32: UInt32,
        appender: Bool = false, trunk: Bool = false, randomBits: UInt32
    ) {
        var field: UInt64
        let effectiveSize: UInt64 = appender ? 0 : UInt64(max(size, 0))
        if effectiveSize <= UInt64(UInt32.max) {
            let high = UInt64(0x8000_0000 | (randomBits & 0x007F_FFFF))
            field = high << 32 | effectiveSize
        } else {
            field = effectiveSize
        }
        if appender { field |= Self.appenderFlag }
        if trunk { field |= Self.trunkFlag }
        self.init(source: source, timestamp: timestamp, sizeField: field, crc32: crc32)
    }

    /// True when the size field carries the appender flag.
    public var isAppender: Bool { sizeField & Self.appenderFlag != 0 }
    /// True when the size field carries the trunk flag.
    public var isTrunk: Bool { sizeField & Self.trunkFlag != 0 }

    /// The file size the name records. For appender files this is the initial size field
    /// (0); the real size needs QUERY_FILE_INFO.
    public var size: Int64 {
        if sizeField & (1 << 63) != 0 || isTrunk {
            return Int64(sizeField & 0xFFFF_FFFF)
        }
        return Int64(bitPattern: sizeField)
    }

    /// The 20 raw bytes.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(20)
        switch source {
        case let .ipv4(a, b, c, d): out += [a, b, c, d]
        case let .storageID(id): out += [UInt8(id & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id >> 16 & 0xFF), UInt8(id >> 24)]
        }
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(timestamp >> UInt32(shift) & 0xFF)) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(sizeField >> UInt64(shift) & 0xFF)) }
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(crc32 >> UInt32(shift) & 0xFF)) }
        return out
    }

    /// The 27-character base64 form.
    public var encoded: String { FDFSBase64.encode(bytes) }

    /// Decodes 20 raw bytes.
    public init(bytes: [UInt8]) throws(FDFSProtocolError) {
        guard bytes.count == 20 else {
            throw FDFSProtocolError(.invalidFileID, "generated name record must be 20 bytes, got \(bytes.count)")
        }
        let little = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        if little > 0 && little <= Self.maxServerID {
            source = .storageID(little)
        } else {
            source = .ipv4(bytes[0], bytes[1], bytes[2], bytes[3])
        }
        timestamp = bytes[4..<8].reduce(0) { $0 << 8 | UInt32($1) }
        sizeField = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
        crc32 = bytes[16..<20].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Decodes the 27 base64 characters at the start of a generated name.
    public init(encoded: some StringProtocol) throws(FDFSProtocolError) {
        guard encoded.utf8.count == 27, let bytes = FDFSBase64.decode(encoded) else {
            throw FDFSProtocolError(.invalidFileID, "'\(encoded)' is not a 27-character generated name")
        }
        try self.init(bytes: bytes)
    }

    /// The 7-character formatted extension (`storage_format_ext_name`): `6 - L` random digits,
    /// a dot and the extension, or 7 random digits when there is no extension.
    /// `digits` supplies random decimal digits (at least 7).
    public static func formattedExtension(_ ext: String, digits: [UInt8]) -> String {
        let extBytes = Array(ext.utf8.prefix(6))
        let count = extBytes.isEmpty ? 7 : 6 - extBytes.count
        var out = digits.prefix(count).map { UInt8(ascii: "0") + $0 % 10 }
        if !extBytes.isEmpty {
            out.append(UInt8(ascii: "."))
            out += extBytes
        }
        return String(decoding: out, as: UTF8.self)
    }
}
