import Synchronization

/// A file being written: its spool file and its ``WriteLifecycle``, behind one lock of its own
/// (``WriteTable`` only guards the map from inodes to write states). `fd` and `path` never
/// change. Lock order: the locks of ``WriteTable`` and ``HandleTable`` may be held while this
/// one is taken, never the other way round.
final class WriteState: Sendable {
    let ino: UInt64
    let path: String
    let fd: Int32
    /// Serialises the commits of this file (one upload in flight).
    let lock = AsyncLock()
    let lifecycle: Mutex<WriteLifecycle<UploadStream>>

    init(ino: UInt64, path: String, fd: Int32, lifecycle: WriteLifecycle<UploadStream>) {
        self.ino = ino
        self.path = path
        self.fd = fd
        self.lifecycle = Mutex(lifecycle)
    }

    /// Feeds an event to the lifecycle; returns the action it asks for.
    func on<Result: Sendable>(_ event: (inout WriteLifecycle<UploadStream>) -> Result) -> Result {
        lifecycle.withLock { event(&$0) }
    }

    /// Current size of the content in the spool (reads from the spool stop there).
    var size: Int64 { lifecycle.withLock { $0.size } }
}
