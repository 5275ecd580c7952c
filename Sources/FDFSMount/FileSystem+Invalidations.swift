/// Invalidation between mounts: on a shared PostgreSQL namespace every change of a name or a
/// row is announced with NOTIFY in the changing transaction (``MetadataSchema``, version 5);
/// each mount LISTENs (``NamespaceListener``) and passes what the others changed to
/// ``FDFSFileSystem/invalidations``, which the FUSE adapter turns into the kernel's
/// `notify_inval_entry` / `notify_inval_inode`, so that names and attributes cached for
/// `attr_timeout=` are asked again at once.
extension FDFSFileSystem {
    /// Starts listening when the namespace is shared (PostgreSQL).
    func listenForOtherMounts() {
        guard let postgres = store.postgres else { return }
        let listener = NamespaceListener(location: postgres.location, own: postgres.backends, logger: logger) { [weak self] change in
            self?.invalidated(change)
        }
        let stopped = listening.withLock { s -> Bool in
            if !s.stopped { s.listener = listener }
            return s.stopped
        }
        if !stopped { listener.start() }
    }

    func stopListening() {
        listening.withLock { s in
            s.stopped = true
            defer { s.listener = nil }
            return s.listener
        }?.stop()
        invalidationSink.finish()
    }

    /// Another mount committed `change`: the store's answers cached for LOOKUP and GETATTR
    /// (``MetadataCache``) about that name or row are dropped (a name with its directory's row
    /// and the inode it stood for), and the kernel, through ``invalidations``, forgets its own.
    func invalidated(_ change: Invalidation) {
        switch change {
        case let .entry(parent, name): store.cache?.forget(inodes: [parent], names: [(parent, name)])
        case let .inode(ino): store.cache?.forget(inodes: [ino])
        }
        invalidationSink.yield(change)
    }
}
