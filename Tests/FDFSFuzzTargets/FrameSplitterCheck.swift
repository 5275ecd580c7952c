import FDFSProtocol
import NIOCore
import NIOEmbedded

/// Feeds bytes to ``FDFSFrameDecoder`` in pieces (sizes taken from the input itself) and checks
/// what comes out: every frame is a head, then bodies adding up to exactly its `pkg_len`, then
/// an end; a buffered body is never larger than the limit.
enum FrameSplitterCheck {
    static let maxBufferedBody = 4096

    static func run(_ bytes: [UInt8]) -> String? {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FDFSFrameDecoder(
            maxBufferedBody: maxBufferedBody, streamedCommands: [.uploadFile, .syncCreateFile], streamResponses: bytes.count % 2 == 0)))
        defer { _ = try? channel.finish() }
        var position = 0
        var step = 1
        while position < bytes.count {
            step = (step * 7 + Int(bytes[position])) % 97 + 1
            let end = min(bytes.count, position + step)
            do {
                try channel.writeInbound(ByteBuffer(bytes: bytes[position..<end]))
            } catch {
                break
            }
            position = end
        }
        var open: (header: FDFSHeader, received: Int64)?
        while let part = try? channel.readInbound(as: FDFSFramePart.self) {
            switch part {
            case .head(let header):
                if open != nil { return "frame-splitter: a head before the previous frame ended" }
                if header.bodyLength < 0 { return "frame-splitter: negative pkg_len \(header.bodyLength) accepted" }
                open = (header, 0)
            case .body(let body):
                guard var frame = open else { return "frame-splitter: a body outside a frame" }
                frame.received += Int64(body.readableBytes)
                if frame.received > frame.header.bodyLength { return "frame-splitter: more body bytes than pkg_len \(frame.header.bodyLength)" }
                let streamed = [FDFSCommand.uploadFile, .syncCreateFile].contains(frame.header.command) || frame.header.command == .response
                if !streamed, body.readableBytes > maxBufferedBody { return "frame-splitter: a buffered body of \(body.readableBytes) bytes over the limit" }
                open = frame
            case .end:
                guard let frame = open else { return "frame-splitter: an end outside a frame" }
                if frame.received != frame.header.bodyLength { return "frame-splitter: frame ended after \(frame.received) of \(frame.header.bodyLength) bytes" }
                open = nil
            }
        }
        return nil
    }
}
