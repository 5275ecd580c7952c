import Synchronization

/// One open file.
struct Handle {
    var ino: UInt64
    var writable: Bool
    /// Reads come from the cluster, through this reader (read-ahead, cache, whole-file check).
    var reader: FileReader?
    /// Reads come from this write state's spool.
    var spool: WriteState?

    /// A handle on a file being written (reads come from its spool).
    init(ino: UInt64, writable: Bool, spool: WriteState) {
        self.ino = ino
        self.writable = writable
        self.spool = spool
    }

    /// A read-only handle on a cluster file.
    init(ino: UInt64, reader: FileReader) {
        self.ino = ino
        self.writable = false
        self.reader = reader
    }

    /// The cluster file a reader handle reads.
    var ref: FileRef? { reader?.ref }
}

/// The open files and directory listings of the mount, by handle number, with what depends
/// on them: open handles per cluster file ID (its deletion waits for the last one), deletions
/// waiting for that, and detached inodes (unlinked or replaced while open, removed at their
/// last close). Lock order: this table's lock may be held while a ``WriteState``'s is taken.
final class HandleTable: Sendable {
    private struct State {
        var handles: [UInt64: Handle] = [:]
        var listings: [UInt64: [DirectoryEntry]] = [:]
        var next: UInt64 = 1
        var openIDs: [String: Int] = [:]
        var deferredDeletes: Set<String> = []
        var detached: Set<UInt64> = []

        mutating func number() -> UInt64 {
            defer { next += 1 }
            return next
        }

        func isOpen(_ ino: UInt64, except fh: UInt64? = nil) -> Bool {
            handles.contains { $0.key != fh && $0.value.ino == ino }
        }

        /// `fh` left the table: one open handle less on its cluster file; returns the file ID
        /// when that was its last handle, and whether its deletion was waiting for this.
        mutating func closed(_ handle: Handle) -> (last: String?, deletion: String?) {
            guard let ref = handle.ref else { return (nil, nil) }
            let key = ref.id.description
            let count = (openIDs[key] ?? 1) - 1
            openIDs[key] = count > 0 ? count : nil
            return count <= 0 ? (key, deferredDeletes.remove(key)) : (nil, nil)
        }
    }

    private let state = Mutex(State())

    /// Registers an open file; returns its handle number.
    func open(_ handle: Handle) -> UInt64 { openCounting(handle).fh }

    /// Registers an open file; `first` tells whether it is the mount's first handle on its
    /// cluster file (FileSystem+OpenFiles.swift records that on a shared namespace).
    func openCounting(_ handle: Handle) -> (fh: UInt64, first: Bool) {
        state.withLock { s in
            let fh = s.number()
            s.handles[fh] = handle
            guard let ref = handle.ref else { return (fh, false) }
            s.openIDs[ref.id.description, default: 0] += 1
            return (fh, s.openIDs[ref.id.description] == 1)
        }
    }

    /// The open file `fh`.
    subscript(fh: UInt64) -> Handle? { state.withLock { $0.handles[fh] } }

    /// Registers a directory listing for READDIR; returns its handle number.
    func open(listing: [DirectoryEntry]) -> UInt64 {
        state.withLock { s in
            let fh = s.number()
            s.listings[fh] = listing
            return fh
        }
    }

    /// The listing of directory handle `fh`.
    func listing(_ fh: UInt64) -> [DirectoryEntry]? { state.withLock { $0.listings[fh] } }

    func closeListing(_ fh: UInt64) {
        _ = state.withLock { $0.listings.removeValue(forKey: fh) }
    }

    /// Is a descriptor open on `ino`?
    func isOpen(_ ino: UInt64) -> Bool { state.withLock { $0.isOpen(ino) } }

    /// What closing a handle leaves to do.
    struct Closed {
        var handle: Handle
        /// Cluster files whose deletion waited for this handle.
        var deletions: [String]
        /// It was the last descriptor of a detached inode: remove the inode.
        var lastOfDetached: Bool
        /// It was the mount's last handle on this cluster file.
        var lastOfFileID: String?
    }

    /// RELEASE: takes `fh` out (its write state counts one descriptor less).
    func close(_ fh: UInt64) -> Closed? {
        let closed = state.withLock { s -> Closed? in
            guard let handle = s.handles.removeValue(forKey: fh) else { return nil }
            let (lastOfFileID, deletion) = s.closed(handle)
            handle.spool?.on { $0.closed() }
            var last = false
            if s.detached.contains(handle.ino), !s.isOpen(handle.ino, except: fh) {
                s.detached.remove(handle.ino)
                last = true
            }
            return Closed(handle: handle, deletions: deletion.map { [$0] } ?? [], lastOfDetached: last, lastOfFileID: lastOfFileID)
        }
        closed?.handle.reader?.stop()
        return closed
    }

    /// What a RELEASE answered on the calling thread did.
    enum QuickClose {
        /// No such handle (already closed).
        case notOpen
        /// Closed; the write state, if any, may now be dropped.
        case closed(WriteState?)
        /// Not closed: an upload, a cluster deletion or the removal of a detached inode is due
        /// (use ``close(_:)`` from a Task).
        case needsWork
    }

    /// RELEASE when it needs no upload, no cluster deletion and no removal. With
    /// `recordingOpens`, the last close of a cluster file needs work too (the store records it).
    func closeQuickly(_ fh: UInt64, recordingOpens: Bool = false) -> QuickClose {
        let (result, reader) = state.withLock { s -> (QuickClose, FileReader?) in
            guard let handle = s.handles[fh] else { return (.notOpen, nil) }
            if let ref = handle.ref, (s.openIDs[ref.id.description] ?? 0) <= 1,
               recordingOpens || s.deferredDeletes.contains(ref.id.description) { return (.needsWork, nil) }
            if let write = handle.spool, !write.on({ $0.closeIsQuick }) { return (.needsWork, nil) }
            if s.detached.contains(handle.ino), !s.isOpen(handle.ino, except: fh) { return (.needsWork, nil) }
            s.handles[fh] = nil
            _ = s.closed(handle)
            handle.spool?.on { $0.closed() }
            return (.closed(handle.spool), handle.reader)
        }
        // Its download, if its READs streamed one, stops.
        reader?.stop()
        return result
    }

    /// A cluster file is to be deleted: false when a handle is open on it (the deletion then
    /// waits for the last close, see ``close(_:)``).
    func mayDelete(_ fileID: String) -> Bool {
        state.withLock { s in
            guard (s.openIDs[fileID] ?? 0) > 0 else { return true }
            s.deferredDeletes.insert(fileID)
            return false
        }
    }

    /// `ino` was detached: true when no descriptor is open on it (remove it now); otherwise it
    /// is removed at its last close. Exactly one of the two paths removes it.
    func removeAtLastClose(_ ino: UInt64) -> Bool {
        state.withLock { s in
            guard s.isOpen(ino) else { return true }
            s.detached.insert(ino)
            return false
        }
    }
}
