import CFuse3
import Dispatch
import FDFSMount
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Passes the core's ``FDFSFileSystem/invalidations`` (what other mounts changed) to the
/// kernel with `fuse_lowlevel_notify_inval_entry` and `fuse_lowlevel_notify_inval_inode`.
///
/// A notify call may wait for the kernel's lock on the directory or inode, which a request in
/// progress may hold until it is answered: so the calls are never made on a libfuse thread
/// nor on Swift's cooperative pool, but on a serial dispatch queue of their own. ``stop()``
/// waits for the call in progress, and no call starts after it (the session is destroyed next).
final class InvalidationPump: Sendable {
    private struct Session: @unchecked Sendable { let raw: OpaquePointer }
    private let session: Session
    private let queue = DispatchQueue(label: "fdfs.fuse.invalidations")
    private let stopped = Mutex(false)
    private let consumer = Mutex<Task<Void, Never>?>(nil)
    private let logger: Logger

    init(session: OpaquePointer, logger: Logger) {
        self.session = Session(raw: session)
        self.logger = logger
    }

    /// Starts passing `changes` on until ``stop()`` or the end of the stream.
    func start(_ changes: AsyncStream<Invalidation>) {
        let task = Task { [self] in
            for await change in changes {
                queue.async { self.send(change) }
            }
        }
        consumer.withLock { $0 = task }
    }

    private func send(_ change: Invalidation) {
        guard !stopped.withLock({ $0 }) else { return }
        let rc: Int32
        switch change {
        case let .entry(parent, name):
            rc = name.withCString { fuse_lowlevel_notify_inval_entry(session.raw, parent, $0, strlen($0)) }
        case let .inode(ino):
            rc = fuse_lowlevel_notify_inval_inode(session.raw, ino, 0, 0)
        }
        // ENOENT: the kernel holds nothing of it (nothing to forget).
        if rc != 0, rc != -ENOENT { logger.debug("invalidating \(change) in the kernel: \(String(cString: strerror(-rc)))") }
    }

    /// Stops: no notify call starts after this returns.
    func stop() {
        consumer.withLock { $0 }?.cancel()
        stopped.withLock { $0 = true }
        queue.sync {}
    }
}
