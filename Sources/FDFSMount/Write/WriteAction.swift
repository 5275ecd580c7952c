/// What the file system does for an event of a ``WriteLifecycle``: the runner
/// (FileSystem+WriteRunner.swift) carries each case out.
enum WriteAction<Stream> {
    /// Nothing.
    case none
    /// A write landed: feed the stream (if any) the bytes, and first its upload target when
    /// `needsTarget`; clear the set-ID bits when `clearPrivilegeBits`.
    case feed(Stream?, offset: Int64, end: Int64, needsTarget: Bool, clearPrivilegeBits: Bool)
    /// End a stream that will not be committed (its appender file is deleted).
    case discardStream(Stream)
    /// Reply to the flush with `error` (after discarding `discard`).
    case fail(FSError, discard: Stream?)
    /// Upload the spool (finishing the stream, or in place) and commit the name.
    case upload(UploadPlan<Stream>)
    /// The last descriptor closed with changes never flushed: commit now, then drop if idle.
    case commit
    /// The last descriptor of a file whose write failed closed: drop its spool and changes.
    case discardChanges
    /// Drop the spool if nothing needs it any more.
    case dropIfIdle
    /// Close and remove the spool file, give back its bytes, discard the stream.
    case drop(stream: Stream?, spoolBytes: Int64)
}

/// What a commit uploads: the file as it was when the commit started.
struct UploadPlan<Stream> {
    var generation: UInt64
    var size: Int64
    var mtime: Int64
    var changed: Int64
    var base: WriteLifecycle<Stream>.AppenderBase?
    /// The stream to finish instead of uploading the spool (the commit owns it now).
    var stream: Stream?
}

extension WriteAction: Sendable where Stream: Sendable {}
extension UploadPlan: Sendable where Stream: Sendable {}
