import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The write path: write states over spool files, WRITE and truncation into the spool,
/// and the streamed upload that follows a new file written in order.
extension FDFSFileSystem {
    // MARK: Write states

    /// Installs a write state (or returns the one another request installed first).
    func install(_ write: WriteState, addHandle: Bool) -> WriteState {
        let (result, duplicate) = writes.install(write, addHandle: addHandle)
        if duplicate {
            close(write.fd)
            Glibc.unlink(write.path)
            spool.release(write.on { $0.reserved })
        }
        return result
    }

    func writeStateEmpty(ino: UInt64, dirty: Bool, mtime: Int64) throws(FSError) -> WriteState {
        let (path, fd) = try spool.create(ino: ino)
        return install(WriteState(ino: ino, path: path, fd: fd, lifecycle: WriteLifecycle(size: 0, dirty: dirty, mtime: mtime)), addHandle: true)
    }

    /// A write state over an existing spool file (a pending upload found after a restart).
    func adoptSpool(ino: UInt64, path: String, dirty: Bool, mtime: Int64, addHandle: Bool = true) throws(FSError) -> WriteState {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw FSError.posix("open spool \(path)") }
        var info = stat()
        fstat(fd, &info)
        let size = Int64(info.st_size)
        spool.adopt(bytes: size)
        return install(WriteState(ino: ino, path: path, fd: fd, lifecycle: WriteLifecycle(size: size, dirty: dirty, mtime: mtime)), addHandle: addHandle)
    }

    /// The write state for opening `entry` for writing: the current one, an empty spool
    /// (O_TRUNC, or nothing committed yet), or a copy of the committed content. Nothing is
    /// committed for a file that was unlinked while open.
    func writeState(for entry: Entry, truncate: Bool) async throws(FSError) -> WriteState {
        let write = try await acquireWriteState(for: entry, truncate: truncate)
        write.on { w in
            if entry.isDetached { w.orphan() }
            w.privilegeBits = Self.privilegeBits(entry.mode)
            // O_TRUNC changed the content now (a new spool starts with mtime now).
            if truncate { w.openedTruncating() }
        }
        return write
    }

    func acquireWriteState(for entry: Entry, truncate: Bool) async throws(FSError) -> WriteState {
        let ino = entry.ino
        if let existing = openedWriteState(ino) {
            if truncate { try resize(existing, to: 0) }
            return existing
        }
        if truncate || entry.fileID == nil {
            if !truncate, let pending = try store.pendingUploads().last(where: { $0.ino == ino }) {
                return try adoptSpool(ino: ino, path: pending.spool, dirty: true, mtime: entry.mtime)
            }
            let write = try writeStateEmpty(ino: ino, dirty: truncate || entry.state == Entry.provisional, mtime: truncate ? POSIX.nowNanoseconds() : entry.mtime)
            return write
        }
        // Copy-on-write: the spool starts as the committed content.
        let ref = try await fileRef(entry)
        try spool.reserve(ref.size)
        let created: (path: String, fd: Int32)
        do { created = try spool.create(ino: ino) } catch {
            spool.release(ref.size)
            throw error
        }
        do {
            try await copy(ref, to: created.fd)
        } catch {
            close(created.fd)
            Glibc.unlink(created.path)
            spool.release(ref.size)
            throw error
        }
        let lifecycle = entry.fileID.map { WriteLifecycle<UploadStream>(copyOf: $0, size: ref.size, mtime: entry.mtime) }
            ?? WriteLifecycle<UploadStream>(size: ref.size, dirty: false, mtime: entry.mtime)
        return install(WriteState(ino: ino, path: created.path, fd: created.fd, lifecycle: lifecycle), addHandle: true)
    }

    /// Sets the spool size (truncate or extend), with the spool cap checked first.
    func resize(_ write: WriteState, to size: Int64) throws(FSError) {
        let growth = write.on { max(0, size - $0.reserved) }
        try spool.reserve(growth)
        guard ftruncate(write.fd, off_t(size)) == 0 else {
            spool.release(growth)
            throw FSError.posix("truncate spool")
        }
        let now = POSIX.nowNanoseconds()
        runQuietly(write.on { $0.truncated(to: size, growth: growth, now: now) }, for: write)
    }

    // MARK: Write

    /// WRITE: lands in the spool (synchronous, local disk only). The spool cap is checked
    /// before the bytes are written: ENOSPC when it would be exceeded. `caller` is the writer.
    public func write(_ fh: UInt64, offset: Int64, bytes: UnsafeRawBufferPointer, caller: Caller = .root) throws(FSError) -> Int {
        guard let handle = handles[fh] else { throw FSError(.badHandle) }
        guard handle.writable, let write = handle.spool else { throw FSError(.badHandle, "not open for writing") }
        let end = offset + Int64(bytes.count)
        // Taken now; given back if the cap refuses.
        let growth = write.on { $0.reserve(upTo: end) }
        do { try spool.reserve(growth) } catch {
            write.on { w in
                w.unreserve(growth)
                w.writeFailed(error)
            }
            throw error
        }
        guard bytes.count == 0 || POSIX.pwriteAll(write.fd, bytes.baseAddress!, bytes.count, offset) else {
            let error = FSError.posix("write spool")
            write.on { $0.writeFailed(error) }
            throw error
        }
        let now = POSIX.nowNanoseconds(), threshold = options.streamThreshold, keeps = Self.keepsPrivilegeBits(caller)
        let action = write.on { w in
            w.wrote(offset: offset, end: end, now: now, threshold: threshold, keepsPrivilegeBits: keeps) {
                threshold > 0 ? makeStream(for: write) : nil
            }
        }
        runQuietly(action, for: write, caller: caller)
        return bytes.count
    }

    // MARK: Streamed uploads

    /// A stream for a new file's spool: its first bytes go where the commit would upload them,
    /// and the appender file is journaled (deleted after a crash) as soon as it exists.
    func makeStream(for write: WriteState) -> UploadStream {
        let ino = write.ino
        let threshold = options.streamThreshold
        return UploadStream(spoolDescriptor: write.fd, threshold: threshold, step: max(64 << 10, min(8 << 20, threshold / 2)), cluster: cluster) {
            [self] (event: UploadStream.Event) throws(FSError) in try handle(event, ino: ino)
        }
    }
}
