import CFastCRC
import FDFSClient
import Logging

/// Start, stop, and the periodic background pass: retries of failed or abandoned uploads,
/// cluster deletions, journaled metadata writes (FileSystem+ClusterMetadata.swift).
extension FDFSFileSystem {
    // MARK: Lifecycle

    /// Recovers from a previous run (pending uploads, abandoned names, stray spool files; on a
    /// shared namespace this mount's own rows and dead mounts' ones, see
    /// FileSystem+Session.swift) and starts the heartbeat and the background retrier.
    public func start() async {
        await recoverAtStart()
        listenForOtherMounts()
        if store.engine == .postgres {
            Task { [weak self] in
                while let interval = self?.heartbeatInterval, self?.isStopped == false {
                    try? await Task.sleep(for: interval)
                    guard let self, !self.isStopped else { return }
                    self.renewSession()
                }
            }
        }
        Task { [weak self] in
            while let self, !self.isStopped {
                try? await Task.sleep(for: .seconds(2))
                await self.background()
            }
        }
        Task { [weak self] in
            while let self, !self.isStopped {
                try? await Task.sleep(for: .milliseconds(500))
                await self.writeMetadata(whenQuiet: true)
            }
        }
    }

    var isStopped: Bool { backgroundWork.isStopped }

    /// Stops background work (the mount is going away). Pending uploads stay in the journal.
    public func stop() {
        backgroundWork.stop()
        stopListening()
        endSession()
    }

    /// One pass of background work: take over dead mounts' journals (shared namespace), retry
    /// failed or abandoned uploads and cluster deletions, and give back idle read buffers once
    /// reads have stopped.
    public func background() async {
        await takeOverDeadSessions()
        BufferPool.shared.trim()
        let retry = writes.all.filter { $0.on { $0.needsRetry } }
        for write in retry {
            do throws(FSError) {
                try await commit(write)
                releaseIfIdle(write)
            } catch {
                logger.warning("retrying upload of inode \(write.ino) failed: \(error)")
            }
        }
        await processDeletions()
        // Give freed heap pages back: NIO's socket buffers are freed in many thread arenas,
        // which glibc otherwise keeps (measured: ~200 MiB RSS after a 1 GiB read, ~30 MiB with this).
        fdfs_malloc_trim()
    }
}
