import NIOCore

extension ByteBuffer {
    /// Writes `text` into a fixed field of exactly `width` bytes, NUL-padded.
    /// Text longer than the field is cut, as the C code does with `strncpy`-style copies;
    /// callers validate lengths first where a cut would change meaning.
    @inlinable
    public mutating func writeFixedString(_ text: String, width: Int) {
        let bytes = Array(text.utf8.prefix(width))
        writeBytes(bytes)
        if bytes.count < width {
            writeRepeatingByte(0, count: width - bytes.count)
        }
    }

    /// Reads a fixed field of `width` bytes and returns the text before the first NUL.
    @inlinable
    public mutating func readFixedString(width: Int) -> String? {
        guard let bytes = readBytes(length: width) else { return nil }
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// Writes a big-endian int64.
    @inlinable
    public mutating func writeInt64(_ value: Int64) {
        writeInteger(value, endianness: .big)
    }

    /// Reads a big-endian int64.
    @inlinable
    public mutating func readInt64() -> Int64? {
        readInteger(endianness: .big, as: Int64.self)
    }

    /// Reads a big-endian int32.
    @inlinable
    public mutating func readInt32() -> Int32? {
        readInteger(endianness: .big, as: Int32.self)
    }

    /// Reads the remaining bytes as text.
    @inlinable
    public mutating func readRemainingString() -> String {
        readString(length: readableBytes) ?? ""
    }
}

/// Reads fields from a body of a known command and turns a short body into a clear error.
public struct BodyReader {
    public var buffer: ByteBuffer
    public let context: String

    public init(_ buffer: ByteBuffer, context: String) {
        self.buffer = buffer
        self.context = context
    }

    public var remaining: Int { buffer.readableBytes }

    public mutating func int64(_ field: String) throws(FDFSProtocolError) -> Int64 {
        guard let value = buffer.readInt64() else { throw short(field) }
        return value
    }

    public mutating func int32(_ field: String) throws(FDFSProtocolError) -> Int32 {
        guard let value = buffer.readInt32() else { throw short(field) }
        return value
    }

    public mutating func byte(_ field: String) throws(FDFSProtocolError) -> UInt8 {
        guard let value = buffer.readInteger(as: UInt8.self) else { throw short(field) }
        return value
    }

    /// A NUL-padded field of `width` bytes; the text before the first NUL must be UTF-8 (the
    /// protocol's names, addresses and IDs are ASCII: other bytes would be changed by decoding
    /// and could not be sent back as they came).
    public mutating func fixedString(_ field: String, width: Int) throws(FDFSProtocolError) -> String {
        guard let bytes = buffer.readBytes(length: width) else { throw short(field) }
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        guard let value = String(validating: bytes[..<end], as: UTF8.self) else { throw notText(field) }
        return value
    }

    /// A field of `length` bytes that must be UTF-8 without NUL bytes.
    public mutating func string(_ field: String, length: Int) throws(FDFSProtocolError) -> String {
        guard length >= 0, let bytes = buffer.readBytes(length: length) else { throw short(field) }
        guard !bytes.contains(0), let value = String(validating: bytes, as: UTF8.self) else { throw notText(field) }
        return value
    }

    private func notText(_ field: String) -> FDFSProtocolError {
        FDFSProtocolError(.malformed, "\(context): \(field) is not UTF-8 text without NUL bytes")
    }

    public mutating func bytes(_ field: String, length: Int) throws(FDFSProtocolError) -> ByteBuffer {
        guard length >= 0, let value = buffer.readSlice(length: length) else { throw short(field) }
        return value
    }

    public mutating func rest() -> String { buffer.readRemainingString() }

    /// Fails unless the whole body was consumed.
    public func expectEnd() throws(FDFSProtocolError) {
        guard buffer.readableBytes == 0 else {
            throw FDFSProtocolError(.malformed, "\(context): \(buffer.readableBytes) unexpected trailing bytes")
        }
    }

    private func short(_ field: String) -> FDFSProtocolError {
        FDFSProtocolError(.malformed, "\(context): body too short for \(field)")
    }
}
