import Synchronization

/// The files being written, by inode: one ``WriteState`` each, from the first open for
/// writing (or a pending upload found at start) until nothing needs its spool. Lock order:
/// this table's lock may be held while a ``WriteState``'s is taken.
final class WriteTable: Sendable {
    private let writes = Mutex<[UInt64: WriteState]>([:])

    /// The write state of `ino`, if it is being written.
    subscript(ino: UInt64) -> WriteState? { writes.withLock { $0[ino] } }

    /// Every write state (for the retrier and the spool sweep).
    var all: [WriteState] { writes.withLock { Array($0.values) } }

    /// Installs `write`, or returns the one another request installed first (`true`: `write`
    /// is a duplicate the caller disposes of); with `addHandle` the result counts one more
    /// descriptor.
    func install(_ write: WriteState, addHandle: Bool) -> (WriteState, duplicate: Bool) {
        writes.withLock { w in
            if let existing = w[write.ino] {
                if addHandle { existing.on { $0.opened() } }
                return (existing, true)
            }
            w[write.ino] = write
            if addHandle { write.on { $0.opened() } }
            return (write, false)
        }
    }

    /// The write state of `ino` after `event` (under the table's lock, so it cannot be
    /// dropped meanwhile), if the file is being written.
    func update(_ ino: UInt64, _ event: (inout WriteLifecycle<UploadStream>) -> Void) -> WriteState? {
        writes.withLock { w in
            guard let write = w[ino] else { return nil }
            write.on { event(&$0) }
            return write
        }
    }

    /// Takes `write` out when its lifecycle allows the drop; returns the drop action (or `.none`).
    func drop(_ write: WriteState, discardingChanges: Bool) -> WriteAction<UploadStream> {
        writes.withLock { w in
            guard w[write.ino] === write else { return .none }
            let action = write.on { $0.drop(discardingChanges: discardingChanges) }
            if case .drop = action { w[write.ino] = nil }
            return action
        }
    }
}
