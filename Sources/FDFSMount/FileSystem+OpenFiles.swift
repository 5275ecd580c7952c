/// Open cluster files and the other mounts of a shared namespace: a file no name refers to
/// any more is deleted only when no live mount has it open. On PostgreSQL each mount records
/// its first open and its last close of each cluster file (``MappingStore/fileOpened(_:)``);
/// the deletion pass skips files open on other live sessions and retries them later. On
/// SQLite (one mount per store) the in-memory count (`State.openIDs`) is all there is.
extension FDFSFileSystem {
    /// Whether opens are recorded in the store (a shared namespace).
    var recordsOpens: Bool { store.engine == .postgres }

    /// After the mount's first handle on `fileID` was registered: records the file as open on
    /// this session.
    func recordOpen(_ fileID: String) {
        guard recordsOpens else { return }
        do throws(FSError) { try store.fileOpened(fileID) } catch {
            logger.warning("cannot record \(fileID) as open (\(error)): another mount may delete it while it is read here")
        }
    }

    /// After the mount's last handle on `fileID` closed.
    func recordClose(_ fileID: String) {
        guard recordsOpens else { return }
        do throws(FSError) { try store.fileClosed(fileID) } catch {
            logger.warning("cannot record \(fileID) as closed (\(error)): its deletion waits until this mount's session ends")
        }
    }

    /// Is `fileID` open on another live mount of the shared namespace?
    func isOpenOnOtherMount(_ fileID: String) -> Bool {
        guard recordsOpens else { return false }
        do throws(FSError) {
            return try store.isOpenElsewhere(fileID, aliveSince: Self.unixNow - sessionLifetime)
        } catch {
            logger.warning("cannot tell whether \(fileID) is open on another mount (\(error)); its deletion waits")
            return true
        }
    }
}
