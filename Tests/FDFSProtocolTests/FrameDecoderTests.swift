import FDFSProtocol
import NIOCore
import NIOEmbedded
import FDFSTestSupport
import Testing

/// ``FDFSFrameDecoder`` in a real NIO pipeline (EmbeddedChannel).
@Suite("Frame decoder")
struct FrameDecoderTests {
    static func channel(_ decoder: FDFSFrameDecoder = FDFSFrameDecoder()) -> EmbeddedChannel {
        EmbeddedChannel(handler: ByteToMessageHandler(decoder))
    }

    /// Everything the decoder has emitted so far.
    static func drain(_ channel: EmbeddedChannel) throws -> [FDFSFramePart] {
        var parts: [FDFSFramePart] = []
        while let part = try channel.readInbound(as: FDFSFramePart.self) { parts.append(part) }
        return parts
    }

    /// What a buffered decoder must emit for `frames`: head, whole body (if any), end.
    static func expectedParts(_ frames: [VectorFrame]) -> [FDFSFramePart] {
        frames.flatMap { frame -> [FDFSFramePart] in
            let header = FDFSHeader(bodyLength: Int64(frame.pkg_len), command: FDFSCommand(rawValue: UInt8(frame.cmd)), status: UInt8(frame.status))
            return frame.pkg_len == 0 ? [.head(header), .end] : [.head(header), .body(frame.body), .end]
        }
    }

    /// Every frame of one scenario, client and server directions interleaved.
    static func scenario() throws -> [VectorFrame] { try Vectors.load("05_metadata").frames }

    @Test("whole frames delivered together come out as head / body / end")
    func wholeFrames() throws {
        let frames = try Self.scenario()
        let channel = Self.channel()
        try channel.writeInbound(ByteBuffer(bytes: frames.flatMap(\.bytes)))
        #expect(try Self.drain(channel) == Self.expectedParts(frames))
        #expect(try channel.finish().isClean)
    }

    @Test("frames split byte by byte decode the same")
    func byteByByte() throws {
        let frames = try Self.scenario()
        let channel = Self.channel()
        var parts: [FDFSFramePart] = []
        for byte in frames.flatMap(\.bytes) {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            parts += try Self.drain(channel)
        }
        #expect(parts == Self.expectedParts(frames))
        #expect(try channel.finish().isClean)
    }

    @Test("a streamed command larger than the buffer limit arrives in chunks", arguments: [1, 3, 7, 64])
    func streamedUpload(chunkSize: Int) throws {
        // Captured UPLOAD_FILE (29-byte body) followed by a captured ACTIVE_TEST.
        let upload = try #require(try Vectors.load("01_upload").frames.first { $0.cmd == 11 })
        let active = try #require(try Vectors.load("05_metadata").frames.first { $0.cmd == 111 })
        let channel = Self.channel(FDFSFrameDecoder(maxBufferedBody: 16, streamedCommands: [.uploadFile]))
        let stream = upload.bytes + active.bytes
        var parts: [FDFSFramePart] = []
        for start in stride(from: 0, to: stream.count, by: chunkSize) {
            let chunk = Array(stream[start..<min(start + chunkSize, stream.count)])
            try channel.writeInbound(ByteBuffer(bytes: chunk))
            let new = try Self.drain(channel)
            for case let .body(body) in new { #expect(body.readableBytes <= chunkSize, "no chunk is held back") }
            parts += new
        }
        #expect(parts.first == .head(FDFSHeader(bodyLength: 29, command: .uploadFile)))
        let bodies = parts.compactMap { part -> [UInt8]? in if case let .body(body) = part { body.bytes } else { nil } }
        #expect(bodies.flatMap { $0 } == upload.bodyBytes, "the chunks add up to the body")
        #expect(chunkSize >= 29 || bodies.count > 1)
        #expect(Array(parts.suffix(3)) == [.end, .head(FDFSHeader(bodyLength: 0, command: .activeTest)), .end])
        #expect(parts.filter { $0 == .end }.count == 2)
        #expect(try channel.finish().isClean)
    }

    @Test("streamed responses (downloads) pass through in chunks; empty ones are head + end")
    func streamedResponse() throws {
        let channel = Self.channel(FDFSFrameDecoder(maxBufferedBody: 4, streamResponses: true))
        let download = frame(.response, ByteBuffer(bytes: Array("hello".utf8)))
        try channel.writeInbound(ByteBuffer(bytes: Array(download.prefix(13))))
        #expect(try Self.drain(channel) == [.head(FDFSHeader(bodyLength: 5, command: .response)), .body(ByteBuffer(string: "hel"))])
        try channel.writeInbound(ByteBuffer(bytes: Array(download.dropFirst(13)) + frame(.response, status: 2)))
        #expect(try Self.drain(channel) == [
            .body(ByteBuffer(string: "lo")), .end, .head(FDFSHeader(bodyLength: 0, command: .response, status: 2)), .end,
        ])
        #expect(try channel.finish().isClean)
    }

    @Test("a pkg_len above the limit is refused as soon as the header arrives", arguments: [Int64(16 + 1), 1 << 40, Int64.max])
    func tooLarge(length: Int64) throws {
        let channel = Self.channel(FDFSFrameDecoder(maxBufferedBody: 16, streamedCommands: [.uploadFile]))
        var header = FDFSHeader(bodyLength: length, command: .setMetadata).encoded()
        // Only the 10 header bytes are sent: the decoder must not wait for (or reserve) the body.
        #expect(throws: FDFSProtocolError(.tooLarge, "SET_METADATA(13) pkg_len \(length) exceeds the limit of 16 bytes")) {
            try channel.writeInbound(header.readSlice(length: 10)!)
        }
        #expect(try Self.drain(channel).isEmpty, "nothing was emitted for the refused frame")
        _ = try? channel.finish()
    }

    @Test("the limit itself is accepted")
    func atLimit() throws {
        let channel = Self.channel(FDFSFrameDecoder(maxBufferedBody: 16))
        let body = ByteBuffer(bytes: Array(repeating: 7, count: 16))
        try channel.writeInbound(ByteBuffer(bytes: frame(.setMetadata, body)))
        #expect(try Self.drain(channel) == [.head(FDFSHeader(bodyLength: 16, command: .setMetadata)), .body(body), .end])
        #expect(try channel.finish().isClean)
    }

    @Test("a negative pkg_len is refused", arguments: [Int64(-1), Int64.min])
    func negativeLength(length: Int64) throws {
        let channel = Self.channel()
        var header = ByteBuffer()
        header.writeInteger(length, endianness: .big)
        header.writeBytes([111, 0])
        #expect(throws: FDFSProtocolError.self) { try channel.writeInbound(header) }
        do throws(FDFSProtocolError) {
            var copy = header
            _ = try FDFSHeader.decode(from: &copy)
            Issue.record("negative length decoded")
        } catch {
            #expect(error.code == .malformed)
        }
        _ = try? channel.finish()
    }

    @Test("EOF in the middle of a frame is an error", arguments: [(3, false), (10, false), (20, false), (10, true), (20, true), (38, true)])
    func eofMidFrame(cut: Int, streamed: Bool) throws {
        let upload = try #require(try Vectors.load("01_upload").frames.first { $0.cmd == 11 })
        let channel = Self.channel(FDFSFrameDecoder(streamedCommands: streamed ? [.uploadFile] : []))
        try channel.writeInbound(ByteBuffer(bytes: Array(upload.bytes.prefix(cut))))
        _ = try Self.drain(channel)
        #expect(throws: FDFSProtocolError(.truncated, "connection closed in the middle of a frame")) { try channel.finish() }
    }

    @Test("EOF right after a complete frame is clean")
    func eofAtBoundary() throws {
        let upload = try #require(try Vectors.load("01_upload").frames.first { $0.cmd == 11 })
        let channel = Self.channel(FDFSFrameDecoder(streamedCommands: [.uploadFile]))
        try channel.writeInbound(ByteBuffer(bytes: upload.bytes))
        #expect(try Self.drain(channel).last == .end)
        #expect(try channel.finish().isClean)
    }
}
