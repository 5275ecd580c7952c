@testable import FDFSMount
import Testing

/// Every transition of ``WriteLifecycle``, without a kernel, a spool file or a cluster: events
/// go in, the phase and the returned action are checked. The stream is an `Int` here.
@Suite struct WriteLifecycleTests {
    typealias Machine = WriteLifecycle<Int>
    static let failure = FSError(.noSpace, "spool full")

    /// The phase as text (FSError is not Equatable).
    func phase(_ m: Machine) -> String {
        switch m.phase {
        case .clean: return "clean"
        case .dirty: return "dirty"
        case .uploading(let since, let retrying): return "uploading(\(since),\(retrying))"
        case .retrying: return "retrying"
        case .writeFailed(let e): return "writeFailed(\(e.code))"
        case .orphaned(let e): return "orphaned(\(e.map { "\($0.code)" } ?? "-"))"
        }
    }

    /// The action as text.
    func action(_ a: WriteAction<Int>) -> String {
        switch a {
        case .none: return "none"
        case .feed(let s, let o, let e, let t, let c): return "feed(\(s.map(String.init) ?? "-"),\(o),\(e),\(t),\(c))"
        case .discardStream(let s): return "discardStream(\(s))"
        case .fail(let e, let s): return "fail(\(e.code),\(s.map(String.init) ?? "-"))"
        case .upload(let p): return "upload(\(p.generation),\(p.size),\(p.stream.map(String.init) ?? "-"))"
        case .commit: return "commit"
        case .discardChanges: return "discardChanges"
        case .dropIfIdle: return "dropIfIdle"
        case .drop(let s, let bytes): return "drop(\(s.map(String.init) ?? "-"),\(bytes))"
        }
    }

    func write(_ m: inout Machine, _ offset: Int64, _ end: Int64, now: Int64 = 5, threshold: Int64 = 100, keeps: Bool = true,
               stream: Int? = nil) -> String {
        action(m.wrote(offset: offset, end: end, now: now, threshold: threshold, keepsPrivilegeBits: keeps) { stream })
    }

    /// A lifecycle in each phase (one descriptor open), built by events.
    func machine(in name: String) -> Machine {
        var m = Machine(size: 0, dirty: false, mtime: 1)
        m.opened()
        switch name {
        case "clean": break
        case "dirty": _ = write(&m, 0, 10)
        case "uploading": _ = write(&m, 0, 10); _ = m.commitStarted()
        case "retrying": _ = write(&m, 0, 10); _ = m.commitStarted(); m.uploadFailed()
        case "writeFailed": m.writeFailed(Self.failure)
        case "orphaned": _ = write(&m, 0, 10); m.orphan()
        default: Issue.record("no phase \(name)")
        }
        return m
    }

    static let phases = ["clean", "dirty", "uploading", "retrying", "writeFailed", "orphaned"]

    // MARK: Creation and recovery

    @Test func startingPoints() {
        let created = Machine(size: 0, dirty: true, mtime: 7)
        #expect(phase(created) == "dirty" && created.handles == 0 && created.size == 0 && created.mtime == 7 && created.base == nil)
        let reader = Machine(size: 0, dirty: false, mtime: 7)
        #expect(phase(reader) == "clean" && reader.flushIsNoop)
        let copy = Machine(copyOf: "group1/M00/00/00/x", size: 40, mtime: 7)
        #expect(phase(copy) == "clean" && copy.size == 40 && copy.reserved == 40 && copy.base == .init(fileID: "group1/M00/00/00/x", size: 40))
    }

    @Test func crashRecoveredSpoolIsRetriedThenDropped() {
        var m = Machine(size: 30, dirty: true, mtime: 3)
        #expect(m.needsRetry && m.reserved == 30)
        let started = m.commitStarted()
        #expect(action(started) == "upload(0,30,-)" && phase(m) == "uploading(0,false)")
        guard case .upload(let plan) = started else { return }
        m.uploadCommitted(plan, as: "group1/M00/00/00/n", appender: false)
        #expect(phase(m) == "clean" && !m.needsRetry)
        #expect(action(m.drop(discardingChanges: false)) == "drop(-,30)")
    }

    @Test func crashRecoveredSpoolWhoseUploadFailsStaysForTheRetrier() {
        var m = Machine(size: 30, dirty: true, mtime: 3)
        _ = m.commitStarted()
        m.uploadFailed()
        #expect(phase(m) == "retrying" && m.needsRetry && action(m.drop(discardingChanges: false)) == "none")
    }

    // MARK: Descriptors and the last close

    @Test func lastCloseWins() {
        var m = machine(in: "dirty")
        m.opened()
        #expect(m.handles == 2 && m.closeIsQuick)
        m.closed()
        #expect(action(m.released()) == "dropIfIdle" && action(m.drop(discardingChanges: false)) == "none")
        #expect(!m.closeIsQuick)
        m.closed()
        #expect(action(m.released()) == "commit")
    }

    @Test(arguments: phases) func releaseOfTheLastDescriptor(_ name: String) {
        var m = machine(in: name)
        m.closed()
        let expected = ["clean": "dropIfIdle", "dirty": "commit", "uploading": "commit", "retrying": "commit",
                        "writeFailed": "discardChanges", "orphaned": "dropIfIdle"][name]
        #expect(action(m.released()) == expected)
    }

    @Test func aFailedWriteDecidesEvenAfterOrphaning() {
        var m = machine(in: "writeFailed")
        m.orphan()
        m.closed()
        #expect(phase(m) == "orphaned(noSpace)" && action(m.released()) == "discardChanges")
    }

    @Test(arguments: phases) func dropWhenIdle(_ name: String) {
        var m = machine(in: name)
        #expect(action(m.drop(discardingChanges: true)) == "none") // a descriptor is open
        m.closed()
        let droppable = ["clean": true, "dirty": false, "uploading": false, "retrying": false, "writeFailed": false, "orphaned": true][name]!
        #expect(action(m.drop(discardingChanges: false)) == (droppable ? "drop(-,\(m.reserved))" : "none"))
        #expect(action(m.drop(discardingChanges: true)) == "drop(-,\(m.reserved))")
    }

    @Test func dropHandsBackTheStreamOnce() {
        var m = Machine(size: 0, dirty: true, mtime: 1)
        _ = m.reserve(upTo: 10)
        _ = write(&m, 0, 10, stream: 4)
        m.orphan()
        #expect(action(m.drop(discardingChanges: false)) == "drop(4,10)")
        #expect(m.stream == nil)
    }

    @Test func closeIsQuickOnlyWithoutWorkForTheLastClose() {
        for name in Self.phases {
            let m = machine(in: name)
            let quick = ["clean": true, "dirty": false, "uploading": false, "retrying": false, "writeFailed": false, "orphaned": true][name]!
            #expect(m.closeIsQuick == quick, "\(name)")
        }
    }

    // MARK: Queries

    @Test(arguments: phases) func flushAndRetryQueries(_ name: String) {
        var m = machine(in: name)
        let noop = ["clean": true, "dirty": false, "uploading": false, "retrying": false, "writeFailed": false, "orphaned": true][name]!
        #expect(m.flushIsNoop == noop)
        #expect(!m.needsRetry) // a descriptor is open
        m.closed()
        let retry = ["clean": false, "dirty": true, "uploading": true, "retrying": true, "writeFailed": false, "orphaned": false][name]!
        #expect(m.needsRetry == retry)
    }

    // MARK: Writes

    @Test(arguments: phases) func writeInEveryPhase(_ name: String) {
        var m = machine(in: name)
        let generation = m.generation
        #expect(write(&m, 20, 30, now: 9) == "feed(-,20,30,false,false)")
        #expect(m.generation == generation + 1 && m.size == 30 && m.mtime == 9 && m.changed == 9)
        let after = ["clean": "dirty", "dirty": "dirty", "uploading": "uploading(1,false)", "retrying": "retrying",
                     "writeFailed": "writeFailed(noSpace)", "orphaned": "orphaned(-)"][name]
        #expect(phase(m) == after)
    }

    @Test func aNewFileWrittenFromItsStartStreams() {
        var m = Machine(size: 0, dirty: true, mtime: 1)
        #expect(write(&m, 0, 60, threshold: 100, stream: 3) == "feed(3,0,60,false,false)")
        #expect(write(&m, 60, 120, threshold: 100, stream: 9) == "feed(3,60,120,true,false)") // the target, once
        #expect(write(&m, 120, 200, threshold: 100, stream: 9) == "feed(3,120,200,false,false)")
    }

    @Test func noStreamUnlessFromOffsetZeroOfAnEmptyNewFile() {
        var off = Machine(size: 0, dirty: true, mtime: 1)
        #expect(write(&off, 0, 10) == "feed(-,0,10,false,false)") // streaming is off
        var middle = Machine(size: 0, dirty: true, mtime: 1)
        #expect(write(&middle, 5, 10, stream: 1) == "feed(-,5,10,false,false)")
        var grown = Machine(size: 8, dirty: true, mtime: 1)
        #expect(write(&grown, 0, 10, stream: 1) == "feed(-,0,10,false,false)")
        var copy = Machine(copyOf: "g/M00/00/00/a", size: 0, mtime: 1)
        #expect(write(&copy, 0, 10, stream: 1) == "feed(-,0,10,false,false)")
    }

    @Test func aWriteByAnUnprivilegedUserClearsSetIDBits() {
        var m = Machine(size: 0, dirty: true, mtime: 1)
        m.privilegeBits = 0o4000
        #expect(write(&m, 0, 1, keeps: true) == "feed(-,0,1,false,false)")
        #expect(write(&m, 0, 1, keeps: false) == "feed(-,0,1,false,true)")
        m.privilegeBits = 0
        #expect(write(&m, 0, 1, keeps: false) == "feed(-,0,1,false,false)")
    }

    @Test func aCopyRecordsTheRangesWritten() {
        var m = Machine(copyOf: "g/M00/00/00/a", size: 100, mtime: 1)
        _ = write(&m, 10, 20)
        _ = write(&m, 150, 160)
        #expect(m.base?.written == [10..<20, 150..<160] && m.size == 160)
        for i in 0..<5000 { _ = write(&m, Int64(i), Int64(i + 1)) }
        // Too many: the whole file, then ranges again.
        #expect(m.base?.written.first == 0..<Int64.max && (m.base?.written.count ?? 0) < 4096)
    }

    @Test func spoolReservation() {
        var m = Machine(size: 10, dirty: true, mtime: 1)
        #expect(m.reserve(upTo: 5) == 0 && m.reserve(upTo: 25) == 15 && m.reserved == 25)
        m.unreserve(15)
        #expect(m.reserved == 10)
    }

    @Test(arguments: phases) func aFailedWriteIsKept(_ name: String) {
        var m = machine(in: name)
        m.writeFailed(FSError(.io, "first"))
        m.writeFailed(FSError(.noSpace, "second"))
        let after = ["clean": "writeFailed(io)", "dirty": "writeFailed(io)", "uploading": "writeFailed(io)", "retrying": "writeFailed(io)",
                     "writeFailed": "writeFailed(noSpace)", "orphaned": "orphaned(io)"][name]
        #expect(phase(m) == after)
        #expect(m.writeFailure != nil)
    }

    @Test func flushOfAFailedWriteFails() {
        var m = Machine(size: 0, dirty: true, mtime: 1)
        _ = write(&m, 0, 10, stream: 2)
        m.writeFailed(Self.failure)
        #expect(action(m.commitStarted()) == "fail(noSpace,2)")
        #expect(action(m.commitStarted()) == "fail(noSpace,-)") // every flush says so
    }

    // MARK: Truncation, O_TRUNC, unlink

    @Test func truncationBreaksTheStream() {
        var m = Machine(copyOf: "g/M00/00/00/a", size: 100, mtime: 1)
        #expect(action(m.truncated(to: 40, growth: 0, now: 8)) == "none")
        #expect(phase(m) == "dirty" && m.size == 40 && m.changed == 8 && m.base?.truncatedTo == 40)
        #expect(action(m.truncated(to: 300, growth: 200, now: 9)) == "none")
        #expect(m.reserved == 300 && m.base?.truncatedTo == 40 && m.generation == 2)
        var streaming = Machine(size: 0, dirty: true, mtime: 1)
        _ = write(&streaming, 0, 10, stream: 6)
        #expect(action(streaming.truncated(to: 0, growth: 0, now: 9)) == "discardStream(6)" && streaming.stream == nil)
    }

    @Test func openedTruncatingSetsTheChangeTime() {
        var m = Machine(size: 0, dirty: true, mtime: 50)
        m.openedTruncating()
        #expect(m.changed == 50)
    }

    @Test(arguments: phases) func orphanInEveryPhase(_ name: String) {
        var m = machine(in: name)
        m.orphan()
        #expect(phase(m) == (name == "writeFailed" ? "orphaned(noSpace)" : "orphaned(-)"))
        #expect(action(m.commitStarted()) == "none" && m.flushIsNoop)
    }

    // MARK: Commits

    @Test(arguments: phases) func commitStartedInEveryPhase(_ name: String) {
        var m = machine(in: name)
        let expected = ["clean": "none", "dirty": "upload(1,10,-)", "uploading": "none", "retrying": "upload(1,10,-)",
                        "writeFailed": "fail(noSpace,-)", "orphaned": "none"][name]
        #expect(action(m.commitStarted()) == expected)
        let after = ["clean": "clean", "dirty": "uploading(1,false)", "uploading": "uploading(1,false)", "retrying": "uploading(1,true)",
                     "writeFailed": "writeFailed(noSpace)", "orphaned": "orphaned(-)"][name]
        #expect(phase(m) == after)
    }

    @Test func aCommitTakesTheStream() {
        var m = Machine(size: 0, dirty: true, mtime: 1)
        _ = write(&m, 0, 10, stream: 5)
        #expect(action(m.commitStarted()) == "upload(1,10,5)" && m.stream == nil)
        _ = write(&m, 10, 20, stream: 8) // no new stream: the file is not empty
        #expect(m.stream == nil)
    }

    @Test func aStreamOnACleanOrOrphanedFileIsDiscardedAtCommit() {
        var m = Machine(size: 0, dirty: true, mtime: 1)
        _ = write(&m, 0, 10, stream: 5)
        m.orphan()
        #expect(action(m.commitStarted()) == "discardStream(5)")
    }

    func uploading(_ m: inout Machine) -> UploadPlan<Int> {
        guard case .upload(let plan) = m.commitStarted() else {
            Issue.record("no upload")
            return UploadPlan(generation: 0, size: 0, mtime: 0, changed: 0, base: nil, stream: nil)
        }
        return plan
    }

    @Test func uploadCommittedLeavesTheFileClean() {
        var m = machine(in: "dirty")
        let plan = uploading(&m)
        #expect(plan.mtime == 5 && plan.changed == 5)
        m.uploadCommitted(plan, as: "g/M00/00/00/n", appender: false)
        #expect(phase(m) == "clean" && m.base == nil && m.flushIsNoop)
    }

    @Test func changesDuringTheUploadKeepTheFileDirty() {
        var m = machine(in: "dirty")
        let plan = uploading(&m)
        _ = write(&m, 10, 20)
        m.uploadCommitted(plan, as: "g/M00/00/00/n", appender: false)
        #expect(phase(m) == "dirty" && !m.flushIsNoop)
        var t = machine(in: "dirty")
        let p2 = uploading(&t)
        _ = t.truncated(to: 0, growth: 0, now: 9)
        t.uploadCommitted(p2, as: "g/M00/00/00/n", appender: false)
        #expect(phase(t) == "dirty")
    }

    @Test func anAppenderFileIsTheBaseOfTheNextUpdate() {
        var m = Machine(copyOf: "g/M00/00/00/a", size: 100, mtime: 1)
        _ = write(&m, 10, 20)
        _ = m.truncated(to: 50, growth: 0, now: 6)
        let plan = uploading(&m)
        #expect(plan.base == .init(fileID: "g/M00/00/00/a", size: 100, written: [10..<20], truncatedTo: 50))
        m.uploadCommitted(plan, as: "g/M00/00/00/a", appender: true)
        #expect(m.base == .init(fileID: "g/M00/00/00/a", size: 50))
    }

    /// Ranges written and truncations made while an upload runs are not in the committed
    /// appender file: they stay the changes of the next in-place update (they were dropped,
    /// so the next update sent no MODIFY for them).
    @Test func changesDuringAnAppenderUploadAreKeptForTheNextUpdate() {
        var m = Machine(copyOf: "g/M00/00/00/a", size: 100, mtime: 1)
        _ = write(&m, 0, 1)
        let plan = uploading(&m)
        _ = write(&m, 6, 7, now: 7)
        _ = m.truncated(to: 90, growth: 0, now: 8)
        m.uploadCommitted(plan, as: "g/M00/00/00/a", appender: true)
        #expect(phase(m) == "dirty")
        #expect(m.base == .init(fileID: "g/M00/00/00/a", size: 100, written: [6..<7], truncatedTo: 90))
        let next = uploading(&m)
        #expect(next.base == .init(fileID: "g/M00/00/00/a", size: 100, written: [6..<7], truncatedTo: 90))
        m.uploadCommitted(next, as: "g/M00/00/00/a", appender: true)
        #expect(phase(m) == "clean" && m.base == .init(fileID: "g/M00/00/00/a", size: 90))
    }

    /// A new file's first upload as an appender file: what is written during it is tracked too.
    @Test func changesDuringAFirstAppenderUploadAreKept() {
        var m = machine(in: "dirty")
        let plan = uploading(&m)
        _ = write(&m, 2, 4, now: 7)
        m.uploadCommitted(plan, as: "g/M00/00/00/a", appender: true)
        #expect(phase(m) == "dirty" && m.base == .init(fileID: "g/M00/00/00/a", size: 10, written: [2..<4]))
    }

    @Test func inPlaceFallbackForgetsTheBase() {
        var m = Machine(copyOf: "g/M00/00/00/a", size: 100, mtime: 1)
        m.inPlaceFellBack(from: "g/M00/00/00/other")
        #expect(m.base != nil)
        m.inPlaceFellBack(from: "g/M00/00/00/a")
        #expect(m.base == nil)
    }

    @Test func uploadFailedKeepsTheSpoolForARetry() {
        var m = machine(in: "dirty")
        _ = uploading(&m)
        m.uploadFailed()
        #expect(phase(m) == "retrying" && !m.flushIsNoop)
        m.closed()
        #expect(m.needsRetry && action(m.released()) == "commit")
        let plan = uploading(&m)
        #expect(phase(m) == "uploading(1,true)")
        m.uploadCommitted(plan, as: "g/M00/00/00/n", appender: false)
        #expect(phase(m) == "clean")
    }

    @Test func anAbortedCommitLeavesTheFileAsItWas() {
        var m = machine(in: "dirty")
        _ = uploading(&m)
        m.commitAborted()
        #expect(phase(m) == "dirty")
        var r = machine(in: "retrying")
        _ = uploading(&r)
        r.commitAborted()
        #expect(phase(r) == "retrying")
        r.commitAborted() // not uploading: nothing
        #expect(phase(r) == "retrying")
    }

    @Test func theNameGoneDuringTheUpload() {
        var m = machine(in: "dirty")
        let plan = uploading(&m)
        m.nameGone()
        #expect(phase(m) == "orphaned(-)")
        m.uploadCommitted(plan, as: "g/M00/00/00/n", appender: false)
        m.uploadFailed()
        m.commitAborted()
        #expect(phase(m) == "orphaned(-)")
    }

    @Test func aWriteFailingDuringTheUploadOutlivesIt() {
        var m = machine(in: "dirty")
        let plan = uploading(&m)
        m.writeFailed(Self.failure)
        m.uploadCommitted(plan, as: "g/M00/00/00/n", appender: false)
        #expect(phase(m) == "writeFailed(noSpace)")
        m.uploadFailed()
        #expect(phase(m) == "writeFailed(noSpace)")
    }
}
