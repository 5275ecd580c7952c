import FDFSProtocol
import NIOCore

/// Hands incoming frame parts from the event loop to one async reader at a time, with
/// back-pressure (reads stop while `highWater` bytes wait unread) and a read timeout (no byte
/// for `timeout` while someone is waiting fails the wait and closes the connection).
///
/// Every stored property is touched on the channel's event loop only.
final class FrameBridge: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = FDFSFramePart

    private let timeout: TimeAmount
    private let highWater: Int
    private let describe: String
    private var context: ChannelHandlerContext?
    private var queue = CircularBuffer<FDFSFramePart>()
    private var queuedBytes = 0
    private var failure: FDFSClientError?
    private var waiter: CheckedContinuation<FDFSFramePart, any Error>?
    private var timer: Scheduled<Void>?
    private var readOutstanding = false
    private var operation = "request"

    init(timeout: TimeAmount, highWater: Int = 1 << 20, endpoint: String) {
        self.timeout = timeout
        self.highWater = highWater
        self.describe = endpoint
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { requestRead() }
    }

    func channelActive(context: ChannelHandlerContext) {
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
        let protocolError = error as? FDFSProtocolError
        let code: FDFSClientError.Code = protocolError?.code == .truncated ? .connectionClosed : .protocolViolation
        fail(FDFSClientError(code, operation: operation, endpoint: describe, message: protocolError?.description ?? "\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(FDFSClientError(.connectionClosed, operation: operation, endpoint: describe, message: "connection closed by peer"))
        context.fireChannelInactive()
    }

    private func fail(_ error: FDFSClientError) {
        if failure == nil { failure = error }
        cancelTimer()
        if let waiter {
            self.waiter = nil
            waiter.resume(throwing: failure!)
        }
    }

    private func requestRead() {
        guard !readOutstanding, let context, failure == nil else { return }
        readOutstanding = true
        context.read()
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    /// Installs `continuation` as the reader of the next part. Must run on the event loop.
    func next(_ continuation: CheckedContinuation<FDFSFramePart, any Error>, operation: String) {
        self.operation = operation
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
        waiter = continuation
        requestRead()
        let timeout = self.timeout
        timer = context?.eventLoop.scheduleTask(in: timeout) { [self] in
            timer = nil
            fail(FDFSClientError(.timeout, operation: operation, endpoint: describe, message: "no data for \(timeout.nanoseconds / 1_000_000) ms"))
            context?.close(promise: nil)
        }
    }

    /// Whether the connection can carry another request.
    var isUsable: Bool { failure == nil && queue.isEmpty }
}
