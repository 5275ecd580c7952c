import Synchronization

/// Appender files this storage turned into normal files (REGENERATE_APPENDER_FILENAME): the
/// old remote filename and the new one, for the sync threads.
///
/// A streamed upload (the mount's large copies) appends to an appender file and regenerates it
/// at its close, usually before the sync threads have sent every append. The append records
/// that follow in the binlog then name a file that is gone. Without this table they are
/// skipped, and the rename record sends the whole file again under its new name. With it, the
/// missing appends (and a create not sent yet) are read from the new name (the bytes did not
/// change: a normal file cannot be appended to), sent for the old name the peer still has, and
/// the rename record then renames the peer's complete copy.
///
/// Memory only and bounded (the oldest entries go first): after a restart, or for a rename
/// this long ago, the sync falls back to sending the whole file, which is correct, only slower.
final class RegeneratedAppenders: Sendable {
    /// Renames remembered at most.
    static let capacity = 4096

    /// New names by old name.
    private let table = Mutex(BoundedTable<String>(capacity: capacity))

    /// `old` (an appender file's remote filename) is now `new`.
    func renamed(_ old: String, to new: String) {
        table.withLock { $0.set(old, new) }
    }

    /// The remote filename `old` was regenerated to, if this storage remembers it.
    func newName(of old: String) -> String? { table.withLock { $0[old] } }
}
