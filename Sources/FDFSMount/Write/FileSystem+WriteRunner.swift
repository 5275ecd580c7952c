import FDFSClient
import FDFSProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The runner of ``WriteLifecycle``: file-system operations feed events to a file's lifecycle
/// (under the file's own lock) and carry out the ``WriteAction`` it returns here, outside any
/// lock. This is the only place the lifecycle's decisions turn into I/O.
extension FDFSFileSystem {
    /// Carries out an action that needs no waiting (on the calling thread). `.upload`,
    /// `.commit`, `.discardChanges` and `.dropIfIdle` need ``run(_:for:)``.
    func runNow(_ action: WriteAction<UploadStream>, for write: WriteState, caller: Caller = .root) throws(FSError) {
        switch action {
        case .none, .upload, .commit, .discardChanges, .dropIfIdle:
            break
        case .feed(let stream, let offset, let end, let needsTarget, let clearPrivilegeBits):
            if let stream { feed(stream, write: write, offset: offset, end: end, needsTarget: needsTarget) }
            if clearPrivilegeBits {
                do throws(FSError) { try self.clearPrivilegeBits(write.ino) } catch {
                    logger.error("cannot clear the set-ID bits of inode \(write.ino) after a write by uid \(caller.uid): \(error)")
                }
            }
        case .discardStream(let stream):
            discard(stream)
        case .fail(let error, let stream):
            if let stream { discard(stream) }
            throw error
        case .drop(let stream, let spoolBytes):
            if let stream { discard(stream) }
            close(write.fd)
            Glibc.unlink(write.path)
            spool.release(spoolBytes)
        }
    }

    /// ``runNow(_:for:caller:)`` for actions that do not fail (all but `.fail`).
    func runQuietly(_ action: WriteAction<UploadStream>, for write: WriteState, caller: Caller = .root) {
        do throws(FSError) { try runNow(action, for: write, caller: caller) } catch {
            logger.error("inode \(write.ino): \(error)")
        }
    }

    /// Carries out any action, waiting for uploads.
    func run(_ action: WriteAction<UploadStream>, for write: WriteState) async throws(FSError) {
        switch action {
        case .upload(let plan):
            try await upload(write, plan)
        case .commit:
            // Written but never flushed (mmap, or a flush that failed): upload now; on failure
            // the retrier keeps trying.
            do throws(FSError) { try await commit(write) } catch {
                logger.error("upload of inode \(write.ino) at release failed: \(error); will retry")
            }
            releaseIfIdle(write)
        case .discardChanges:
            discardFailedWrite(write)
        case .dropIfIdle:
            releaseIfIdle(write)
        default:
            try runNow(action, for: write, caller: .root)
        }
    }

    /// Gives the stream the bytes of a write, and first its upload target once the lifecycle
    /// says the threshold is reached (a target that cannot be found breaks the stream).
    private func feed(_ stream: UploadStream, write: WriteState, offset: Int64, end: Int64, needsTarget: Bool) {
        var target: UploadOptions?
        if needsTarget {
            do throws(FSError) {
                guard let entry = try store.entry(write.ino) else { throw FSError(.notFound, "inode \(write.ino) is gone") }
                target = try uploadTarget(entry).options
            } catch {
                stream.breakOff(error)
                return
            }
        }
        stream.wrote(offset: offset, end: end, target: target)
    }

    /// What a stream reports: its appender file is journaled (deleted after a crash) as soon
    /// as it exists.
    func handle(_ event: UploadStream.Event, ino: UInt64) throws(FSError) {
        switch event {
        case .created(let id): try store.streamStarted(id.description, ino: ino)
        }
    }

    /// Ends a stream that will not be committed: its appender file, if any, is deleted.
    func discard(_ stream: UploadStream) {
        stream.breakOff()
        Task {
            await stream.stopped()
            guard let id = stream.fileID else { return }
            do throws(FSError) { try store.streamEnded(id.description, abandoned: true) } catch {
                logger.warning("cannot journal the deletion of \(id): \(error)")
            }
            await deleteFromCluster(id.description)
        }
    }

    // MARK: Events from the file system

    /// The write state of `ino` with one more descriptor, if the file is being written.
    func openedWriteState(_ ino: UInt64) -> WriteState? {
        writes.update(ino) { $0.opened() }
    }

    /// A descriptor that was counted but never registered (a failed OPEN or SETATTR) goes away.
    func closeUnregistered(_ write: WriteState) {
        write.on { $0.closed() }
        releaseIfIdle(write)
    }

    /// RELEASE of a descriptor on `write` (already taken out of the handle table, its count
    /// already lowered): the last close decides what happens to the changes.
    func released(_ write: WriteState) async {
        do throws(FSError) { try await run(write.on { $0.released() }, for: write) } catch {
            logger.error("inode \(write.ino): \(error)")
        }
    }

    /// The name of a file being written went away: nothing to commit any more.
    func orphanWrite(_ ino: UInt64) {
        guard let write = writes.update(ino, { $0.orphan() }) else { return }
        releaseIfIdle(write)
    }

    /// Drops a write state (closing and removing its spool) once nothing needs it: no handle
    /// is open and nothing is left to commit, or its changes are to be discarded. Returns
    /// whether it was dropped.
    @discardableResult
    func releaseIfIdle(_ write: WriteState, discardingChanges: Bool = false) -> Bool {
        let action = writes.drop(write, discardingChanges: discardingChanges)
        guard case .drop = action else { return false }
        runQuietly(action, for: write)
        return true
    }
}
