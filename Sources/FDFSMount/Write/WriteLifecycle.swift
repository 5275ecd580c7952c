/// The lifecycle of one file being written, as a value: each event is a mutating method that
/// returns what the file system must do (a ``WriteAction``); the runner in
/// FileSystem+WriteRunner.swift carries the actions out, and is the only place that does I/O.
/// Nothing here touches a file, the mapping store or the cluster, so every transition is tested
/// without them (Tests/FDFSMountTests/WriteLifecycleTests.swift).
///
/// `Stream` is the streamed upload the lifecycle hands back to the runner (``UploadStream`` in
/// the mount, any type in tests).
struct WriteLifecycle<Stream> {
    /// Where the file's content stands with respect to the cluster.
    enum Phase {
        /// The content is the committed file's (or nothing was ever asked of it).
        case clean
        /// Changed since the last commit (a new file is dirty from its creation).
        case dirty
        /// An upload is running; `since` is the generation it uploads, and `retrying` tells
        /// whether the upload before it failed.
        case uploading(since: UInt64, retrying: Bool)
        /// The last upload failed: the spool is kept and the retrier tries again once no
        /// descriptor is open.
        case retrying
        /// A write failed (spool cap, ENOSPC, I/O): the content is short, every flush reports
        /// the error and nothing is committed; the changes are dropped at the last close.
        case writeFailed(FSError)
        /// The name went away (unlink, rename over it, gone during an upload): nothing is
        /// committed; the spool goes when no descriptor needs it. A write that failed before
        /// or after still decides how the last close ends.
        case orphaned(writeFailure: FSError?)
    }

    /// In appendable mode, the appender file the spool started from: its size then, the ranges
    /// written since and the smallest size set by truncation (see FileSystem+InPlace.swift).
    struct AppenderBase: Equatable {
        var fileID: String
        var size: Int64
        var written: [Range<Int64>] = []
        var truncatedTo: Int64 = .max
    }

    private(set) var phase: Phase
    /// Open descriptors (readers and writers) using the spool; the last close decides.
    private(set) var handles = 0
    /// Bumped by every change, so a commit knows whether changes arrived during its upload.
    private(set) var generation: UInt64 = 0
    /// The upload streamed while a new file is written in order from its first byte.
    private(set) var stream: Stream?
    /// Whether the stream was given its upload target (once the threshold is reached).
    private(set) var streamTargetGiven = false
    private(set) var base: AppenderBase?
    /// Ranges written, and the smallest size truncated to, while an upload runs: in appendable
    /// mode they are the changes the committed appender file lacks (the next in-place update's).
    private(set) var changedDuringUpload = AppenderBase(fileID: "", size: 0)
    /// Current size of the content in the spool.
    private(set) var size: Int64
    /// Spool bytes accounted for this file (the largest size reached).
    private(set) var reserved: Int64
    /// mtime to report while the file is written (ns).
    var mtime: Int64
    /// When a write or truncation last changed the content (ns; 0: not yet): ctime is at least this.
    private(set) var changed: Int64 = 0
    /// The set-ID bits a write by a user without CAP_FSETID clears.
    var privilegeBits: UInt32 = 0

    /// A spool of `size` bytes (empty for a new file; a pending upload adopted after a crash is
    /// dirty with no descriptor open, and the retrier uploads it).
    init(size: Int64, dirty: Bool, mtime: Int64) {
        self.phase = dirty ? .dirty : .clean
        self.size = size
        self.reserved = size
        self.mtime = mtime
    }

    /// A copy of the committed file `fileID` (copy-on-write): clean, its changes are tracked
    /// as ranges for an in-place update.
    init(copyOf fileID: String, size: Int64, mtime: Int64) {
        self.init(size: size, dirty: false, mtime: mtime)
        self.base = AppenderBase(fileID: fileID, size: size)
    }

    // MARK: Queries

    /// Has the file changes the cluster does not have (whatever else happened)?
    var hasChanges: Bool {
        switch phase {
        case .dirty, .uploading, .retrying: return true
        case .clean, .writeFailed, .orphaned: return false
        }
    }

    var isOrphaned: Bool {
        if case .orphaned = phase { return true }
        return false
    }

    /// The error of a failed write, reported by every flush.
    var writeFailure: FSError? {
        switch phase {
        case .writeFailed(let error): return error
        case .orphaned(let error): return error
        default: return nil
        }
    }

    /// FLUSH has nothing to do (answered on the calling thread).
    var flushIsNoop: Bool { isOrphaned || (writeFailure == nil && !hasChanges) }

    /// The background retrier uploads this file now.
    var needsRetry: Bool { handles == 0 && hasChanges && writeFailure == nil }

    /// Closing one more descriptor needs no upload and no discarding (RELEASE on the calling thread).
    var closeIsQuick: Bool { !(handles == 1 && (hasChanges || writeFailure != nil) && !isOrphaned) }

    // MARK: Descriptors

    /// OPEN or CREATE added a descriptor.
    mutating func opened() { handles += 1 }

    /// RELEASE (or a failed OPEN) took one away.
    mutating func closed() { handles -= 1 }

    /// After a RELEASE: what the close of the last descriptor must do (last close wins).
    mutating func released() -> WriteAction<Stream> {
        if writeFailure != nil { return .discardChanges }
        if handles == 0, hasChanges { return .commit }
        return .dropIfIdle
    }

    /// May the spool be dropped? Returns the drop (the stream to discard, the spool bytes to
    /// give back) or `.none` when a descriptor or unsaved changes still need it.
    mutating func drop(discardingChanges: Bool) -> WriteAction<Stream> {
        guard handles == 0, discardingChanges || isOrphaned || !hasChanges && writeFailure == nil else { return .none }
        defer { stream = nil }
        return .drop(stream: stream, spoolBytes: reserved)
    }

    // MARK: Content

    /// Takes spool bytes for a write ending at `end` (before the spool cap is asked); returns
    /// how many more are needed.
    mutating func reserve(upTo end: Int64) -> Int64 {
        let growth = max(0, end - reserved)
        reserved += growth
        return growth
    }

    /// The spool cap refused `growth` bytes taken by ``reserve(upTo:)``.
    mutating func unreserve(_ growth: Int64) { reserved -= growth }

    /// Bytes `offset..<end` landed in the spool at `now`. A first write at offset 0 of a new
    /// file starts a stream (`makeStream`, nil when streaming is off); the stream is fed the
    /// bytes and, once they reach `threshold`, its upload target.
    mutating func wrote(offset: Int64, end: Int64, now: Int64, threshold: Int64, keepsPrivilegeBits: Bool,
                        makeStream: () -> Stream?) -> WriteAction<Stream> {
        if offset == 0, size == 0, stream == nil, base == nil, let made = makeStream() {
            stream = made
            streamTargetGiven = false
        }
        size = max(size, end)
        changedContent(now)
        if base != nil { Self.note(offset..<end, in: &base!) }
        if case .uploading = phase { Self.note(offset..<end, in: &changedDuringUpload) }
        var needsTarget = false
        if stream != nil, !streamTargetGiven, end >= threshold {
            streamTargetGiven = true
            needsTarget = true
        }
        return .feed(stream, offset: offset, end: end, needsTarget: needsTarget,
                     clearPrivilegeBits: privilegeBits != 0 && !keepsPrivilegeBits)
    }

    /// A write failed: the first failure is kept and reported by every later flush.
    mutating func writeFailed(_ error: FSError) {
        switch phase {
        case .writeFailed: break
        case .orphaned(nil): phase = .orphaned(writeFailure: error)
        case .orphaned: break
        case .clean, .dirty, .uploading, .retrying: phase = .writeFailed(error)
        }
    }

    /// The spool was cut or extended to `size` (`growth` more bytes reserved) at `now`: a stream
    /// cannot follow, it is discarded.
    mutating func truncated(to size: Int64, growth: Int64, now: Int64) -> WriteAction<Stream> {
        reserved += growth
        self.size = size
        changedContent(now)
        if base != nil { base!.truncatedTo = min(base!.truncatedTo, size) }
        if case .uploading = phase { changedDuringUpload.truncatedTo = min(changedDuringUpload.truncatedTo, size) }
        defer { stream = nil }
        return stream.map { .discardStream($0) } ?? .none
    }

    /// O_TRUNC opened the file: its content changed when the spool was made.
    mutating func openedTruncating() { changed = max(changed, mtime) }

    /// The file's name is gone: nothing is committed any more.
    mutating func orphan() {
        if !isOrphaned { phase = .orphaned(writeFailure: writeFailure) }
    }

    /// Records a written range (past 4096 of them, the whole file counts as written).
    private static func note(_ range: Range<Int64>, in base: inout AppenderBase) {
        if base.written.count < 4096 { base.written.append(range) } else { base.written = [0..<Int64.max] }
    }

    private mutating func changedContent(_ now: Int64) {
        generation += 1
        mtime = now
        changed = now
        switch phase {
        case .clean: phase = .dirty
        case .dirty, .uploading, .retrying, .writeFailed, .orphaned: break
        }
    }
}

/// Upload and commit events. Commits of one file are serialised (``WriteState/lock``), so at
/// most one upload is in flight; writes, truncations, unlinks and failed writes may arrive
/// while it runs, and decide what its end leaves.
extension WriteLifecycle {
    /// FLUSH, FSYNC, the last close or the retrier starts a commit. The stream is taken away
    /// in every case (a later change starts over from the spool).
    mutating func commitStarted() -> WriteAction<Stream> {
        let taken = stream
        stream = nil
        streamTargetGiven = false
        let discard: WriteAction<Stream> = taken.map { .discardStream($0) } ?? .none
        switch phase {
        case .orphaned, .clean, .uploading:
            return discard
        case .writeFailed(let error):
            return .fail(error, discard: taken)
        case .dirty, .retrying:
            if case .retrying = phase { phase = .uploading(since: generation, retrying: true) } else { phase = .uploading(since: generation, retrying: false) }
            changedDuringUpload = AppenderBase(fileID: "", size: 0)
            return .upload(UploadPlan(generation: generation, size: size, mtime: mtime, changed: changed, base: base, stream: taken))
        }
    }

    /// The commit found the name gone (before the upload, or when committing it).
    mutating func nameGone() { orphan() }

    /// The commit stopped before anything was uploaded or committed (a mapping-store error):
    /// the file is as it was.
    mutating func commitAborted() {
        if case .uploading(_, let retrying) = phase { phase = retrying ? .retrying : .dirty }
    }

    /// Appendable mode: the in-place update of `fileID` failed; the whole spool becomes a new
    /// appender file, so the ranges no longer matter.
    mutating func inPlaceFellBack(from fileID: String) {
        if base?.fileID == fileID { base = nil }
    }

    /// The upload failed: the spool is kept for the retrier.
    mutating func uploadFailed() {
        if case .uploading = phase { phase = .retrying }
    }

    /// The upload of `plan` was committed as `fileID`. Changes that arrived during the upload
    /// keep the file dirty. In appendable mode an appender file is the base of the next update,
    /// with the ranges written (and truncations made) during the upload as its changes: the
    /// committed file has the spool as it was when the plan was taken.
    mutating func uploadCommitted(_ plan: UploadPlan<Stream>, as fileID: String, appender: Bool) {
        if case .uploading(let since, _) = phase { phase = generation == since ? .clean : .dirty }
        if appender {
            var next = changedDuringUpload
            next.fileID = fileID
            next.size = plan.size
            base = next
        } else {
            base = nil
        }
        changedDuringUpload = AppenderBase(fileID: "", size: 0)
    }
}

extension WriteLifecycle: Sendable where Stream: Sendable {}
extension WriteLifecycle.Phase: Sendable {}
extension WriteLifecycle.AppenderBase: Sendable {}
