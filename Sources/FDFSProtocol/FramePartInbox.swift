import NIOCore

/// Hands the frame parts of one connection from its event loop to one async reader at a time
/// (client connections and the storage's server sessions alike), with back-pressure: reading
/// from the socket pauses while more than `highWater` bytes wait unread, so a fast peer never
/// fills memory. A wait can carry a timeout: no part within it fails the wait with
/// ``TimedOut`` and closes the connection.
///
/// Every stored property is touched on the channel's event loop only.
package final class FramePartInbox: ChannelInboundHandler, @unchecked Sendable {
    package typealias InboundIn = FDFSFramePart

    /// No part arrived within the timeout of a wait.
    package struct TimedOut: Error {
        package let timeout: TimeAmount
        package var description: String { "no data for \(timeout.nanoseconds / 1_000_000) ms" }
    }

    private let highWater: Int
    private var context: ChannelHandlerContext?
    private var queue = CircularBuffer<FDFSFramePart>()
    private var queuedBytes = 0
    private var closed = false
    private var failure: (any Error)?
    private var waiter: CheckedContinuation<FDFSFramePart?, any Error>?
    private var timer: Scheduled<Void>?
    private var readOutstanding = false

    package init(highWater: Int) {
        self.highWater = highWater
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { requestRead() }
    }

    /// Drops the context when the pipeline lets go of this handler (the channel closed): the
    /// context holds this handler, so keeping it would make a cycle that outlives the
    /// connection, with every unread part (its receive buffer included) in it.
    package func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        self.context = nil
    }

    package func channelActive(context: ChannelHandlerContext) {
        readOutstanding = false
        requestRead()
        context.fireChannelActive()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
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

    package func channelReadComplete(context: ChannelHandlerContext) {
        readOutstanding = false
        if queuedBytes < highWater { requestRead() }
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = error }
        wake()
        context.close(promise: nil)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        closed = true
        wake()
        context.fireChannelInactive()
    }

    /// Ends the current wait once nothing is queued for it any more: with the failure, or nil
    /// when the peer closed.
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

    /// Installs `continuation` as the reader of the next part (nil: the peer closed the
    /// connection). Must run on the event loop.
    package func next(_ continuation: CheckedContinuation<FDFSFramePart?, any Error>, timeout: TimeAmount?) {
        if let part = queue.popFirst() {
            if case let .body(buffer) = part { queuedBytes -= buffer.readableBytes }
            if queuedBytes < highWater { requestRead() }
            continuation.resume(returning: part)
            return
        }
        if let failure {
            continuation.resume(throwing: failure)
            return
        }
        if closed {
            continuation.resume(returning: nil)
            return
        }
        waiter = continuation
        requestRead()
        guard let timeout else { return }
        timer = context?.eventLoop.scheduleTask(in: timeout) { [self] in
            timer = nil
            if failure == nil { failure = TimedOut(timeout: timeout) }
            wake()
            context?.close(promise: nil)
        }
    }
}
