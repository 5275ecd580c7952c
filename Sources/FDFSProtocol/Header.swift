import NIOCore

/// The 10-byte header that starts every FastDFS frame, in both directions.
///
/// `bodyLength` counts the body only (the header is excluded). Responses always carry
/// ``FDFSCommand/response`` (100) and a status byte that is 0 on success or a Linux errno.
public struct FDFSHeader: Hashable, Sendable {
    /// Size of the encoded header in bytes.
    public static let size = 10

    /// Body length in bytes (header excluded).
    public var bodyLength: Int64
    /// Command code.
    public var command: FDFSCommand
    /// Status byte: 0 in requests and successful responses, otherwise an errno value.
    public var status: UInt8

    public init(bodyLength: Int64, command: FDFSCommand, status: UInt8 = 0) {
        self.bodyLength = bodyLength
        self.command = command
        self.status = status
    }

    /// Appends the encoded header to `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(bodyLength, endianness: .big)
        buffer.writeInteger(command.rawValue)
        buffer.writeInteger(status)
    }

    /// The encoded header as a fresh buffer.
    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(Self.size)
        encode(into: &buffer)
        return buffer
    }

    /// Reads a header from the front of `buffer`, or returns nil when fewer than 10 bytes are
    /// readable. A negative length is rejected.
    public static func decode(from buffer: inout ByteBuffer) throws(FDFSProtocolError) -> FDFSHeader? {
        guard buffer.readableBytes >= size else { return nil }
        let length = buffer.readInteger(endianness: .big, as: Int64.self)!
        let command = buffer.readInteger(as: UInt8.self)!
        let status = buffer.readInteger(as: UInt8.self)!
        guard length >= 0 else {
            throw FDFSProtocolError(.malformed, "negative pkg_len \(length) in header")
        }
        return FDFSHeader(bodyLength: length, command: FDFSCommand(rawValue: command), status: status)
    }
}
