import Dispatch
import FDFSClient
import Synchronization

/// One handle's streamed READs served in order from one ranged download (``ClusterStream``),
/// as a direct download would read the file: one request, the storage reading the file in
/// order, no request per READ on either side.
///
/// The kernel sends a sequential reader's READs in order, several at a time, and libfuse's
/// threads pick them up in any order: a READ ahead of the stream waits here (its libfuse
/// thread does not) until the stream reaches its offset, and one thread at a time takes the
/// bytes for the READ at the stream's position. When that READ does not come within
/// ``gapWait`` (the kernel had those pages already and skipped them), the bytes up to the
/// next waiting READ are dropped. A READ the stream has passed, or one further ahead than
/// ``reach``, is refused (the caller downloads it on its own). When the download fails, every
/// waiting READ gets the error, and the stream serves no more.
final class SequentialStream: Sendable {
    typealias Delivery = @Sendable (SplicedBody) -> Void
    typealias Completion = @Sendable (Result<Int, FSError>) -> Void

    /// How long the READ at the stream's position may lag behind a later one before the bytes
    /// in between are dropped.
    static let gapWait: DispatchTimeInterval = .milliseconds(2)
    /// How far ahead of the stream a READ may start and still wait for it (bytes dropped at
    /// most).
    static let reach: Int64 = FileReader.streamSlack

    private struct Waiting {
        let length: Int
        let deliver: Delivery
        let completion: Completion
    }

    private struct State {
        /// Where the next byte taken from the download lies in the file.
        var position: Int64
        var waiting: [Int64: Waiting] = [:]
        /// A thread is taking bytes for the waiting READs.
        var serving = false
        /// That thread waits for the READ at `position`: one arriving wakes it.
        var waitsForGap = false
        /// Closed, or the download failed.
        var ended = false
        /// `gone` ran.
        var gone = false
        /// When the last take ended (or the stream was made).
        var lastActive = ContinuousClock.now
    }

    private let source: any ClusterStream
    /// Where the download ends in the file.
    let end: Int64
    private let state: Mutex<State>
    private let wake = DispatchSemaphore(value: 0)
    private let gone: @Sendable () -> Void
    private let idleLimit: Duration

    /// A stream of the file's bytes `offset..<end`; `gone` runs once it is closed. One that
    /// served nothing for `idleLimit` is ``isStale``.
    init(source: any ClusterStream, offset: Int64, end: Int64, idleLimit: Duration = .seconds(20), gone: @escaping @Sendable () -> Void = {}) {
        self.source = source
        self.end = end
        self.state = Mutex(State(position: offset))
        self.gone = gone
        self.idleLimit = idleLimit
    }

    /// Nothing waits and nothing was taken for the idle limit: its storage may be about to
    /// drop the connection (the caller closes it and opens another).
    var isStale: Bool {
        state.withLock { s in !s.serving && s.waiting.isEmpty && ContinuousClock.now - s.lastActive > idleLimit }
    }

    deinit {
        source.close()
        leave()
    }

    /// Runs `gone`, once.
    private func leave() {
        guard state.withLock({ s in
            defer { s.gone = true }
            return !s.gone
        }) else { return }
        gone()
    }

    /// Queues a READ of `length` bytes at `offset` when this stream can serve it (not passed
    /// yet, at most ``reach`` ahead, before its end): `deliver` then runs with the bytes and
    /// `completion` with their count or the error. False when it cannot, and nothing runs.
    func enqueue(offset: Int64, length: Int, deliver: @escaping Delivery, completion: @escaping Completion) -> Bool {
        enum Queued { case refused, startServing, wakeServer, queued }
        let queued = state.withLock { s -> Queued in
            guard !s.ended, offset >= s.position, offset - s.position <= Self.reach, offset < end, s.waiting[offset] == nil else { return .refused }
            s.waiting[offset] = Waiting(length: length, deliver: deliver, completion: completion)
            if !s.serving {
                s.serving = true
                return .startServing
            }
            return s.waitsForGap && offset == s.position ? .wakeServer : .queued
        }
        switch queued {
        case .refused: return false
        case .startServing: source.run { [self] running in serve(running) }
        case .wakeServer: wake.signal()
        case .queued: break
        }
        return true
    }

    /// Ends the stream: its download stops, and READs still waiting fail.
    func close() {
        end(with: FSError(.io, "stream closed"))
        source.close()
        leave()
    }

    private enum Step {
        case take(at: Int64, skipping: Int64, Waiting)
        case waitForGap
        case stop
    }

    /// Takes the waiting READs' bytes in order until none is left (on a thread of the source).
    private func serve(_ running: Bool) {
        guard running else { return end(with: FSError(.io, "download threads stopped")) }
        var waited = false
        while true {
            let step = state.withLock { s -> Step in
                s.waitsForGap = false
                if s.ended {
                    s.serving = false
                    return .stop
                }
                if let next = s.waiting.removeValue(forKey: s.position) { return .take(at: s.position, skipping: 0, next) }
                guard let ahead = s.waiting.keys.min() else {
                    s.serving = false
                    return .stop
                }
                guard waited else {
                    s.waitsForGap = true
                    return .waitForGap
                }
                return .take(at: ahead, skipping: ahead - s.position, s.waiting.removeValue(forKey: ahead)!)
            }
            switch step {
            case .stop:
                return
            case .waitForGap:
                _ = wake.wait(timeout: .now() + Self.gapWait)
                waited = true
            case let .take(offset, skipping, read):
                waited = false
                do throws(FSError) {
                    let count = try source.take(skipping: skipping, count: read.length, deliver: read.deliver)
                    state.withLock { s in
                        s.position = offset + Int64(count)
                        s.lastActive = .now
                    }
                    read.completion(.success(count))
                } catch {
                    read.completion(.failure(error))
                    end(with: error)
                }
            }
        }
    }

    /// Marks the stream ended and fails every waiting READ with `error`.
    private func end(with error: FSError) {
        let left = state.withLock { s -> [Waiting] in
            s.ended = true
            defer { s.waiting.removeAll() }
            return Array(s.waiting.values)
        }
        for read in left { read.completion(.failure(error)) }
    }
}
