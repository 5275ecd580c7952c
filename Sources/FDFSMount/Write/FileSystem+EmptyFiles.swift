/// Empty files are metadata only (see SEMANTICS.md, "Writes"): a commit whose content is empty
/// uploads nothing. The name gets no cluster file (a file it had is deleted after the commit,
/// as for any replaced content); a later write uploads the file at its close as usual.
extension FDFSFileSystem {
    /// Is `plan` committed without an upload? Its content is empty, no streamed appender file
    /// holds it, and it is not an in-place update of an appender file (`appendable` keeps the
    /// appender file and truncates it).
    func isMetadataOnly(_ plan: UploadPlan<UploadStream>) -> Bool {
        plan.size == 0 && plan.stream == nil && !(options.appendable && plan.base != nil)
    }

    /// Commits `write` as an empty file (no upload): carries out `.upload(plan)` for a plan
    /// ``isMetadataOnly(_:)`` accepts.
    func commitEmpty(_ write: WriteState, _ plan: UploadPlan<UploadStream>) async throws(FSError) {
        let orphan: String?
        do throws(FSError) {
            orphan = try store.commitEmpty(ino: write.ino, mtime: plan.mtime, ctime: plan.changed, queueDeletion: !options.keepReplaced).orphaned
        } catch {
            guard error.code == .notFound else { throw error }
            // The name went away before its commit: nothing is committed.
            write.on { $0.nameGone() }
            return
        }
        write.on { $0.uploadCommitted(plan, as: "", appender: false) }
        metrics.add(metrics.emptyCommits)
        if let orphan { await deleteFromCluster(orphan) }
    }
}
