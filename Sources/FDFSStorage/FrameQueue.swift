import FDFSProtocol
import NIOCore

/// Hands the frame parts of one server connection from the event loop to the async task that
/// serves it, one at a time, with back-pressure: reading from the socket pauses while more than
/// `highWater` bytes wait unread, so a fast uploader never fills memory.
///
/// Every stored property is touched on the channel's event loop only.
final class FrameQueue: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = FDFSFramePart

    private let highWater: Int
    private var context: ChannelHandlerContext?
    private var queue = CircularBuffer<FDFSFramePart>()
    private var queuedBytes = 0
    private var closed = false
    private var failure: (any Error)?
    private var waiter: CheckedContinuation<FDFSFramePart?, any Error>?
    private var timer: Scheduled<Void>?
    private var readOutstanding = false

    init(highWater: Int = 2 << 20) {
        self.highWater = highWater
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { requestRead() }
    }

    func channelActive(context: ChannelHandlerContext) {
        readOutstanding = false
        requestRead()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if let waiter {
            self.waiter = nil
            cancelTimer()
            waiter.resume(returning: part)
        } else {
            if case let .body(buffer) = part { queuedBytes += buffer.readableBytes }
            queue.append(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readOutstanding = false
        if queuedBytes < highWater { requestRead() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = error }
        wake()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        wake()
        context.fireChannelInactive()
    }

    private func wake() {
        cancelTimer()
        guard let waiter, queue.isEmpty else { return }
        self.waiter = nil
        if let failure { waiter.resume(throwing: failure) } else { waiter.resume(returning: nil) }
    }

    private func requestRead() {
        guard !readOutstanding, !closed, failure == nil, let context, context.channel.isActive else { return }
        readOutstanding = true
        context.read()
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    /// Installs `continuation` as the reader of the next part (nil = the peer closed).
    /// Must run on the event loop.
    func next(_ continuation: CheckedContinuation<FDFSFramePart?, any Error>, timeout: TimeAmount?) {
        if let part = queue.popFirst() {
            if case let .body(buffer) = part { queuedBytes -= buffer.readableBytes }
            if queuedBytes < highWater { requestRead() }
            continuation.resume(returning: part)
            return
        }
        if let failure { continuation.resume(throwing: failure); return }
        if closed { continuation.resume(returning: nil); return }
        waiter = continuation
        requestRead()
        if let timeout {
            timer = context?.eventLoop.scheduleTask(in: timeout) { [self] in
                timer = nil
                if failure == nil { failure = StorageError(.EIO, "no data for \(timeout.nanoseconds / 1_000_000_000) s") }
                wake()
                context?.close(promise: nil)
            }
        }
    }
}
