import FDFSClient
import FDFSProtocol
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Work the mount owes the cluster after commits: metadata rewrites and deletions of files
/// no name refers to any more, both journaled in the mapping store.
extension FDFSFileSystem {
    // MARK: Cluster metadata

    /// Journals a metadata rewrite (mode or mtime changed).
    func scheduleMetadata(_ fileID: String?, ino: UInt64) {
        guard let fileID else { return }
        do throws(FSError) { try store.markMetadataDue(fileID, ino: ino) } catch {
            logger.warning("cannot journal the metadata of \(fileID): \(error)")
        }
    }

    /// Uploads within this long hold back journaled metadata writes…
    static let metadataQuietPeriod: Duration = .seconds(1)
    /// …unless the oldest one has waited this long.
    static let metadataMaxDelay: Duration = .seconds(30)

    /// Is the mount in a burst of uploads (and the metadata journal not too old to wait)?
    func uploadsBusy(oldestMarked: Int64) -> Bool {
        guard let last = backgroundWork.lastUpload, ContinuousClock.now - last < Self.metadataQuietPeriod else { return false }
        let waited = POSIX.nowNanoseconds() - oldestMarked
        return waited < Self.metadataMaxDelay.components.seconds * 1_000_000_000
    }

    /// Writes the metadata (path, mode, mtime) of recently committed, renamed or changed
    /// files, from the journal; changes within one pass are coalesced into one SET_METADATA
    /// per file. With `whenQuiet`, the writes wait while uploads are being committed (a
    /// SET_METADATA per file competes with the uploads for the storage: measured ~0.9 ms
    /// more per 16 KiB file during `cp -r`), for at most ``metadataMaxDelay``; the journal
    /// keeps them safe meanwhile.
    public func writeMetadata(whenQuiet: Bool = false) async {
        guard let due = try? store.metadataDue(), let oldest = due.first else { return }
        if whenQuiet && uploadsBusy(oldestMarked: oldest.marked) { return }
        var done: [MappingStore.MetadataDue] = []
        for item in due {
            if whenQuiet && uploadsBusy(oldestMarked: item.marked) { break }
            guard let entry = try? store.entry(item.ino), entry.kind == .file, entry.fileID == item.fileID, let id = try? FileID(item.fileID),
                  let path = try? store.path(item.ino) else {
                done.append(item) // the name moved on to another file, or is gone
                continue
            }
            do {
                try await cluster.setMetadata(id, uploadMetadata(path: path, entry: entry, mtime: entry.mtime), merge: false)
                done.append(item)
            } catch {
                if error.code == .notFound {
                    done.append(item)
                } else {
                    logger.warning("cannot write the metadata of \(id): \(error); will retry")
                }
            }
        }
        do throws(FSError) { try store.metadataWritten(done) } catch {
            logger.warning("cannot clear the metadata journal: \(error)")
        }
    }

    // MARK: Cluster deletions

    /// Deletes a file no name refers to any more (queued in the deletions journal by the
    /// commit that orphaned it). Waits for open handles on it; failures stay in the journal
    /// and are retried; a file deleted meanwhile (by the background pass) is not asked twice.
    func deleteFromCluster(_ text: String) async {
        guard handles.mayDelete(text), backgroundWork.beginDeleting(text) else { return }
        defer { backgroundWork.endDeleting(text) }
        guard (try? store.deletionQueued(text)) != false else { return }
        // Open on another live mount: the journal keeps it, the next pass tries again.
        if isOpenOnOtherMount(text) { return }
        guard let id = try? FileID(text) else {
            try? store.deleted(text)
            return
        }
        do {
            try await cluster.delete(id)
            metrics.add(metrics.clusterDeletes)
        } catch {
            if error.code != .notFound {
                logger.warning("cannot delete \(id) from the cluster (\(error)); will retry")
                return
            }
        }
        try? store.deleted(text)
        cache.dropAll(prefix: FileRef.keyPrefix(id))
    }

    func processDeletions() async {
        guard let list = try? store.deletions() else { return }
        for id in list { await deleteFromCluster(id) }
    }
}
