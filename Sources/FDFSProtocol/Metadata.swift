import NIOCore

/// FastDFS file metadata: name/value pairs encoded as `name 0x02 value`, joined by `0x01`.
///
/// Unlike the C library, which silently cuts long names and values, the encoder here refuses
/// anything it could not send unchanged.
public struct FDFSMetadata: Hashable, Sendable, Sequence {
    public static let recordSeparator: UInt8 = 0x01
    public static let fieldSeparator: UInt8 = 0x02
    public static let maxNameLength = 64
    public static let maxValueLength = 256

    /// The pairs, in order.
    public private(set) var pairs: [(name: String, value: String)] = []

    public init() {}

    /// Builds metadata from pairs, validating each.
    public init(_ pairs: [(String, String)]) throws(FDFSProtocolError) {
        for (name, value) in pairs { try set(name, value) }
    }

    /// Sets (or replaces) a value.
    public mutating func set(_ name: String, _ value: String) throws(FDFSProtocolError) {
        try Self.validate(name: name, value: value)
        if let index = pairs.firstIndex(where: { $0.name == name }) {
            pairs[index].value = value
        } else {
            pairs.append((name, value))
        }
    }

    /// The value for `name`.
    public subscript(name: String) -> String? {
        pairs.first(where: { $0.name == name })?.value
    }

    public var isEmpty: Bool { pairs.isEmpty }
    public var count: Int { pairs.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { pairs.makeIterator() }

    /// The pairs sorted by name in byte order, as the storage keeps them.
    public var sorted: FDFSMetadata {
        var copy = self
        copy.pairs.sort { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        return copy
    }

    /// Merges `other` into this set: its values replace ones with the same name.
    public func merging(_ other: FDFSMetadata) -> FDFSMetadata {
        var copy = self
        for pair in other.pairs {
            if let index = copy.pairs.firstIndex(where: { $0.name == pair.name }) {
                copy.pairs[index].value = pair.value
            } else {
                copy.pairs.append(pair)
            }
        }
        return copy
    }

    /// The wire encoding (no trailing separator).
    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        for (index, pair) in pairs.enumerated() {
            if index > 0 { buffer.writeInteger(Self.recordSeparator) }
            buffer.writeString(pair.name)
            buffer.writeInteger(Self.fieldSeparator)
            buffer.writeString(pair.value)
        }
        return buffer
    }

    /// Decodes the wire form as the C code does: a record without 0x02 is skipped; names and
    /// values are kept as sent (a server may store longer ones than we would send).
    public static func decode(_ buffer: ByteBuffer) -> FDFSMetadata {
        var result = FDFSMetadata()
        let bytes = buffer.readableBytesView
        for record in bytes.split(separator: recordSeparator, omittingEmptySubsequences: true) {
            guard let sep = record.firstIndex(of: fieldSeparator) else { continue }
            let name = String(decoding: record[record.startIndex..<sep], as: UTF8.self)
            let value = String(decoding: record[(sep + 1)...], as: UTF8.self)
            if let index = result.pairs.firstIndex(where: { $0.name == name }) {
                result.pairs[index].value = value
            } else {
                result.pairs.append((name, value))
            }
        }
        return result
    }

    /// Rejects empty names, separators inside a name or value, and over-long fields.
    public static func validate(name: String, value: String) throws(FDFSProtocolError) {
        let nameBytes = Array(name.utf8), valueBytes = Array(value.utf8)
        guard !nameBytes.isEmpty else { throw FDFSProtocolError(.invalidMetadata, "metadata name must not be empty") }
        guard nameBytes.count <= maxNameLength else {
            throw FDFSProtocolError(.invalidMetadata, "metadata name '\(FileID.printable(name))' is longer than \(maxNameLength) bytes")
        }
        guard valueBytes.count <= maxValueLength else {
            throw FDFSProtocolError(.invalidMetadata, "metadata value of '\(FileID.printable(name))' is longer than \(maxValueLength) bytes")
        }
        let forbidden: Set<UInt8> = [recordSeparator, fieldSeparator]
        guard !nameBytes.contains(where: forbidden.contains), !valueBytes.contains(where: forbidden.contains) else {
            throw FDFSProtocolError(.invalidMetadata, "metadata '\(FileID.printable(name))' contains a 0x01 or 0x02 separator")
        }
    }

    public static func == (lhs: FDFSMetadata, rhs: FDFSMetadata) -> Bool {
        lhs.pairs.map(\.name) == rhs.pairs.map(\.name) && lhs.pairs.map(\.value) == rhs.pairs.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        for pair in pairs { hasher.combine(pair.name); hasher.combine(pair.value) }
    }
}
