import FDFSClient
import FDFSProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A streamed upload: while a new file is written in order from its first byte, what has been
/// spooled is sent to the cluster as an appender file (UPLOAD_APPENDER_FILE once ``threshold``
/// bytes are there, then APPEND in steps of at least ``step``), with `sendfile` from the spool.
/// close() then only sends the tail; the caller turns the appender file into a normal one
/// (REGENERATE_APPENDER_FILENAME).
///
/// The spool stays the source of truth: a write out of order, a truncation or any failure
/// breaks the stream, and the commit falls back to uploading the spool as before (the
/// appender file, if one was made, is deleted).
final class UploadStream: Sendable {
    /// What the stream reports to its file's runner (FileSystem+WriteRunner.swift).
    enum Event: Sendable {
        /// The appender file exists: it must be journaled (deleted after a crash) before
        /// more is sent to it.
        case created(FileID)
    }

    private struct State {
        /// Bytes written in order from offset 0.
        var available: Int64 = 0
        var sent: Int64 = 0
        var fileID: FileID?
        /// Where the first bytes go (given with the write that reaches the threshold).
        var target: UploadOptions?
        var finished = false
        var broken = false
        var error: FSError?
        var pump: Task<Void, Never>?
        var wake: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    /// A duplicate of the spool descriptor (the spool file may be closed before the stream).
    private let fd: Int32
    let threshold: Int64
    let step: Int64
    private let cluster: any ClusterBackend
    private let report: @Sendable (Event) throws(FSError) -> Void

    init(spoolDescriptor: Int32, threshold: Int64, step: Int64 = 8 << 20, cluster: any ClusterBackend,
         report: @escaping @Sendable (Event) throws(FSError) -> Void) {
        self.fd = dup(spoolDescriptor)
        self.threshold = max(threshold, 1)
        self.step = max(step, 1)
        self.cluster = cluster
        self.report = report
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The appender file made so far (nil before the threshold was reached).
    var fileID: FileID? { state.withLock { $0.fileID } }

    /// Bytes `offset..<end` were written to the spool; `target` says where the upload goes
    /// (needed once the threshold is reached). Anything but the next bytes in order breaks the
    /// stream.
    func wrote(offset: Int64, end: Int64, target: UploadOptions? = nil) {
        let wake = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard !s.finished, !s.broken else { return nil }
            if let target { s.target = target }
            if offset != s.available || fd < 0 {
                s.broken = true
            } else {
                s.available = end
                if s.pump == nil, s.available >= threshold { s.pump = Task { await self.run() } }
            }
            guard s.broken || s.available - s.sent >= step else { return nil }
            defer { s.wake = nil }
            return s.wake
        }
        wake?.resume()
    }

    /// Stops the stream (an out-of-order change, or the file is going away); `error` says why
    /// when something failed.
    func breakOff(_ error: FSError? = nil) {
        let wake = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.broken = true
            if s.error == nil { s.error = error }
            defer { s.wake = nil }
            return s.wake
        }
        wake?.resume()
    }

    /// Sends what is left up to `size` and returns the appender file holding exactly the
    /// first `size` bytes, or nil when the stream never started, broke or failed (the caller
    /// then uploads the spool, and discards ``fileID`` if set).
    func finish(size: Int64) async -> FileID? {
        let (pump, wake) = state.withLock { s -> (Task<Void, Never>?, CheckedContinuation<Void, Never>?) in
            if s.available != size { s.broken = true }
            s.finished = true
            defer { s.wake = nil }
            return (s.pump, s.wake)
        }
        wake?.resume()
        guard let pump else { return nil }
        await pump.value
        return state.withLock { s in s.broken || s.error != nil || s.sent != size ? nil : s.fileID }
    }

    /// Waits for the pump to stop (after ``breakOff()``).
    func stopped() async {
        await state.withLock { $0.pump }?.value
    }

    /// Why the stream failed, if it did.
    var failure: FSError? { state.withLock { $0.error } }

    private enum Next {
        case send(offset: Int64, length: Int64)
        case stop
        case wait
    }

    private func next() -> Next {
        state.withLock { s in
            if s.broken || s.error != nil { return .stop }
            let pending = s.available - s.sent
            if s.finished { return pending > 0 ? .send(offset: s.sent, length: pending) : .stop }
            guard pending >= step else { return .wait }
            // Whole steps only (the tail goes at close), at most 8 steps at a time.
            return .send(offset: s.sent, length: min(pending - pending % step, 8 * step))
        }
    }

    private func run() async {
        while true {
            var action = next()
            if case .wait = action {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { s -> Bool in
                        let ready = s.broken || s.finished || s.error != nil || s.available - s.sent >= step
                        if !ready { s.wake = continuation }
                        return ready
                    }
                    if resumeNow { continuation.resume() }
                }
                action = next()
            }
            switch action {
            case .stop: return
            case .wait: continue
            case .send(let offset, let length):
                do throws(FSError) {
                    if let id = fileID {
                        try await cluster.append(id, descriptor: fd, offset: offset, length: length)
                    } else {
                        guard var options = state.withLock({ $0.target }) else { throw FSError(.io, "streamed upload without a target") }
                        options.appender = true
                        let id = try await cluster.upload(descriptor: fd, offset: 0, length: length, options: options)
                        state.withLock { $0.fileID = id }
                        try report(.created(id))
                    }
                    state.withLock { $0.sent = offset + length }
                } catch {
                    state.withLock { $0.error = error }
                    return
                }
            }
        }
    }
}
