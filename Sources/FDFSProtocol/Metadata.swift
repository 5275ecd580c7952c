import NIOCore
#if canImport(Glibc)
import Glibc
#endif

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
    /// Where each name sits in `pairs`, so lookups and merges stay linear in the record count.
    private var positions: [String: Int] = [:]

    public init() {}

    /// Builds metadata from pairs, validating each.
    public init(_ pairs: [(String, String)]) throws(FDFSProtocolError) {
        for (name, value) in pairs { try set(name, value) }
    }

    /// Sets (or replaces) a value.
    public mutating func set(_ name: String, _ value: String) throws(FDFSProtocolError) {
        try Self.validate(name: name, value: value)
        put(name, value)
    }

    /// Sets or replaces without validation (decoded or already validated pairs).
    private mutating func put(_ name: String, _ value: String) {
        if let index = positions[name] {
            pairs[index].value = value
        } else {
            positions[name] = pairs.count
            pairs.append((name, value))
        }
    }

    /// The value for `name`.
    public subscript(name: String) -> String? {
        positions[name].map { pairs[$0].value }
    }

    public var isEmpty: Bool { pairs.isEmpty }
    public var count: Int { pairs.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { pairs.makeIterator() }

    /// The pairs sorted by name in byte order, as the storage keeps them.
    public var sorted: FDFSMetadata {
        // Each name's bytes once, then memcmp: byte order without per-comparison copies.
        let keys = pairs.map { Array($0.name.utf8) }
        let order = keys.indices.sorted { left, right in
            keys[left].withUnsafeBufferPointer { a in
                keys[right].withUnsafeBufferPointer { b in
                    let common = Swift.min(a.count, b.count)
                    let result = common == 0 ? 0 : memcmp(a.baseAddress!, b.baseAddress!, common)
                    return result != 0 ? result < 0 : a.count < b.count
                }
            }
        }
        var copy = FDFSMetadata()
        copy.pairs = order.map { pairs[$0] }
        copy.positions.reserveCapacity(pairs.count)
        for (index, pair) in copy.pairs.enumerated() { copy.positions[pair.name] = index }
        return copy
    }

    /// Merges `other` into this set: its values replace ones with the same name.
    public func merging(_ other: FDFSMetadata) -> FDFSMetadata {
        var copy = self
        for pair in other.pairs { copy.put(pair.name, pair.value) }
        return copy
    }

    /// The size of ``encoded()`` in bytes, without building it.
    public var encodedSize: Int {
        pairs.reduce(Swift.max(pairs.count - 1, 0)) { $0 + $1.name.utf8.count + 1 + $1.value.utf8.count }
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
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            while start < bytes.count {
                var end = start, separator = -1
                while end < bytes.count, bytes[end] != recordSeparator {
                    if separator < 0, bytes[end] == fieldSeparator { separator = end }
                    end += 1
                }
                if separator >= 0 {
                    let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<separator]), as: UTF8.self)
                    let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(separator + 1)..<end]), as: UTF8.self)
                    result.put(name, value)
                }
                start = end + 1
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
        let isSeparator = { (byte: UInt8) in byte == recordSeparator || byte == fieldSeparator }
        guard !nameBytes.contains(where: isSeparator), !valueBytes.contains(where: isSeparator) else {
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
