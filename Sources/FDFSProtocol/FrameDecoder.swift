import NIOCore

/// A part of an incoming frame, as ``FDFSFrameDecoder`` emits them.
public enum FDFSFramePart: Sendable, Equatable {
    /// The header. For a buffered command the whole body follows as one `.body`.
    case head(FDFSHeader)
    /// Body bytes (the whole body for buffered commands, a chunk for streamed ones).
    case body(ByteBuffer)
    /// The frame is complete.
    case end
}

/// Splits a byte stream into FastDFS frames, for servers and clients alike.
///
/// Bodies up to `maxBufferedBody` are delivered whole. Commands listed in `streamedCommands`
/// (uploads, downloads, sync) may be larger and are delivered in chunks as they arrive, so a
/// 64 GiB upload never sits in memory. Any other frame whose `pkg_len` exceeds the limit is
/// refused as soon as its header is read, before anything is allocated.
public struct FDFSFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = FDFSFramePart

    private enum State {
        case header
        case buffered(Int)
        case streaming(remaining: Int64)
    }

    private var state = State.header
    public let maxBufferedBody: Int
    public let streamedCommands: Set<UInt8>
    /// Responses (cmd 100) may be streamed too (downloads).
    public let streamResponses: Bool

    public init(maxBufferedBody: Int = 256 * 1024, streamedCommands: Set<FDFSCommand> = [], streamResponses: Bool = false) {
        self.maxBufferedBody = maxBufferedBody
        self.streamedCommands = Set(streamedCommands.map(\.rawValue))
        self.streamResponses = streamResponses
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .header:
            guard let header = try FDFSHeader.decode(from: &buffer) else { return .needMoreData }
            let streamed = streamedCommands.contains(header.command.rawValue) || (streamResponses && header.command == .response)
            if header.bodyLength == 0 {
                context.fireChannelRead(wrapInboundOut(.head(header)))
                context.fireChannelRead(wrapInboundOut(.end))
                return .continue
            }
            if streamed {
                state = .streaming(remaining: header.bodyLength)
            } else {
                guard header.bodyLength <= Int64(maxBufferedBody) else {
                    throw FDFSProtocolError(.tooLarge, "\(header.command) pkg_len \(header.bodyLength) exceeds the limit of \(maxBufferedBody) bytes")
                }
                state = .buffered(Int(header.bodyLength))
            }
            context.fireChannelRead(wrapInboundOut(.head(header)))
            return .continue
        case let .buffered(length):
            guard let body = buffer.readSlice(length: length) else { return .needMoreData }
            state = .header
            context.fireChannelRead(wrapInboundOut(.body(body)))
            context.fireChannelRead(wrapInboundOut(.end))
            return .continue
        case let .streaming(remaining):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let take = Int(min(Int64(buffer.readableBytes), remaining))
            let chunk = buffer.readSlice(length: take)!
            let left = remaining - Int64(take)
            context.fireChannelRead(wrapInboundOut(.body(chunk)))
            if left == 0 {
                state = .header
                context.fireChannelRead(wrapInboundOut(.end))
            } else {
                state = .streaming(remaining: left)
            }
            return .continue
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue, buffer.readableBytes > 0 {}
        if case .header = state, buffer.readableBytes == 0 { return .needMoreData }
        throw FDFSProtocolError(.truncated, "connection closed in the middle of a frame")
    }
}
