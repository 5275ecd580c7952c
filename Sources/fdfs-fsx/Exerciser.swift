#if canImport(Glibc)
import Glibc
#endif

/// How a run treats `EIO` from the mount's uploads (while a storage is stopped).
///
/// SEMANTICS.md ("close (FLUSH)"): a failed upload returns `EIO`, the spooled data is kept and
/// readable, and the upload is retried in the background once the file is closed; `fsync` is
/// the same as FLUSH. So with a tolerance:
/// * `close()` and `fsync()` of the mount may fail with `EIO` (a closed descriptor is gone
///   either way): the run goes on, and every later read and check must still show every byte;
/// * at the end, a last close that fails is followed, as a user would do it, by open and
///   `fsync` retried every 0.5 s until it succeeds (within `seconds`), and a close that must
///   succeed; then the committed file is read back through a fresh descriptor.
/// Reads and opens never get a tolerance: they must fail over to another storage.
struct EIOTolerance: Sendable {
    var seconds: Double
    /// Also retry (every 0.5 s, within `seconds`) an open or a read-back of the mounted file
    /// that fails with EIO: in appendable mode an appender file is read only at its source
    /// storage (SEMANTICS.md, failover), so while that storage is down these fail until it is back.
    var retryReads = false
}

/// What a run does and what it found.
struct RunSummary {
    var steps = 0
    var counts: [OperationKind: Int] = [:]
    /// Closes and fsyncs of the mount that failed with EIO and were tolerated.
    var toleratedFailures = 0
}

/// Runs a seeded sequence of operations on a file in the mount and on a shadow file, and
/// compares them (whole content, fstat and stat size) after every step.
final class Exerciser {
    let seed: UInt64
    let steps: Int
    let mount: FileUnderTest
    let shadow: FileUnderTest
    let tolerance: EIOTolerance?
    /// Shell commands run before a step (e.g. stopping a storage).
    let hooks: [Int: [String]]
    let verbose: Bool
    private var planner: Planner
    /// Every step so far: the operation, the size before it, and notes (tolerated failures).
    private(set) var log: [(step: Int, operation: Operation, sizeBefore: Int64, note: String)] = []
    private(set) var summary = RunSummary()

    init(seed: UInt64, steps: Int, limits: PlanLimits, file: String, shadow: String, tolerance: EIOTolerance?, hooks: [Int: [String]], verbose: Bool) {
        self.seed = seed
        self.steps = steps
        mount = FileUnderTest(path: file, side: "mount")
        self.shadow = FileUnderTest(path: shadow, side: "shadow")
        self.tolerance = tolerance
        self.hooks = hooks
        self.verbose = verbose
        planner = Planner(seed: seed, limits: limits)
    }

    /// The whole run: both files created empty, `steps` operations each followed by a check,
    /// then the last close and a read of the committed file.
    func run() throws(FSXError) -> RunSummary {
        try call(0) { () throws(CallError) in
            try shadow.open(flags: O_RDWR | O_CREAT | O_TRUNC)
            try mount.open(flags: O_RDWR | O_CREAT | O_TRUNC)
        }
        for step in 1...max(steps, 1) where steps > 0 {
            try runHooks(step)
            let size = try call(step) { () throws(CallError) in try shadow.descriptorSize() }
            let operation = planner.next(size: size)
            log.append((step, operation, size, ""))
            if verbose { say(Self.stepLabel(step) + operation.description) }
            try perform(operation, step: step)
            summary.steps = step
            summary.counts[operation.kind, default: 0] += 1
            try check(step)
        }
        try finish(step: steps)
        return summary
    }

    // MARK: Operations

    private func perform(_ operation: Operation, step: Int) throws(FSXError) {
        switch operation {
        case let .read(offset, length):
            let expected = try call(step) { () throws(CallError) in try shadow.pread(offset: offset, length: length) }
            let actual = try call(step) { () throws(CallError) in try mount.pread(offset: offset, length: length) }
            try compare(actual, expected, base: offset, what: "pread", step: step)
        case let .write(offset, length):
            let bytes = SeededGenerator.payload(seed: seed, step: step, count: length)
            try both(step) { file throws(CallError) in try file.pwrite(bytes, offset: offset) }
        case let .sequentialWrite(chunks, chunk):
            let bytes = SeededGenerator.payload(seed: seed, step: step, count: chunks * chunk)
            let start = try call(step) { () throws(CallError) in try shadow.descriptorSize() }
            for index in 0..<chunks {
                let part = Array(bytes[index * chunk..<(index + 1) * chunk])
                try both(step) { file throws(CallError) in try file.pwrite(part, offset: start + Int64(index * chunk)) }
            }
        case let .truncate(size):
            try both(step) { file throws(CallError) in try file.truncatePath(to: size) }
        case let .ftruncate(size):
            try both(step) { file throws(CallError) in try file.ftruncate(to: size) }
        case let .append(length):
            let bytes = SeededGenerator.payload(seed: seed, step: step, count: length)
            if let error = try call(step, { () throws(CallError) in try shadow.append(bytes) }) { throw FSXError.call(step: step, error) }
            if let error = try call(step, { () throws(CallError) in try mount.append(bytes) }) { try tolerate(error, step: step) }
        case let .mapRead(offset, length, shared):
            let expected = try call(step) { () throws(CallError) in try shadow.pread(offset: offset, length: length) }
            let actual = try call(step) { () throws(CallError) in try mount.mapRead(offset: offset, length: length, shared: shared) }
            try compare(actual, expected, base: offset, what: shared ? "MAP_SHARED read" : "MAP_PRIVATE read", step: step)
        case let .mapWrite(offset, length, sync):
            let bytes = SeededGenerator.payload(seed: seed, step: step, count: length)
            let size = try call(step) { () throws(CallError) in try shadow.descriptorSize() }
            if offset + Int64(length) > size {
                try both(step) { file throws(CallError) in try file.ftruncate(to: offset + Int64(length)) }
            }
            try both(step) { file throws(CallError) in try file.mapWrite(bytes, offset: offset, sync: sync) }
        case .fsync:
            try call(step) { () throws(CallError) in try shadow.fsync() }
            do throws(CallError) { try mount.fsync() } catch { try tolerate(error, step: step) }
        case .reopen:
            try closeBoth(step: step)
            try compareCommitted(step: step)
            try call(step) { () throws(CallError) in try shadow.open(flags: O_RDWR) }
            try retryingReads(step) { () throws(CallError) in try mount.open(flags: O_RDWR) }
        case .reopenTruncating:
            try closeBoth(step: step)
            try both(step) { file throws(CallError) in try file.open(flags: O_RDWR | O_TRUNC) }
        }
    }

    /// The last close (retried through open + fsync when tolerated), then the committed file.
    private func finish(step: Int) throws(FSXError) {
        try call(step) { () throws(CallError) in try shadow.close() }
        do throws(CallError) { try mount.close() } catch {
            try tolerate(error, step: step)
            try retryingReads(step) { () throws(CallError) in try mount.open(flags: O_RDWR) }
            try fsyncMount(step: step)
            try call(step) { () throws(CallError) in try mount.close() }
        }
        try compareCommitted(step: step)
    }

    private func closeBoth(step: Int) throws(FSXError) {
        try call(step) { () throws(CallError) in try shadow.close() }
        do throws(CallError) { try mount.close() } catch { try tolerate(error, step: step) }
    }

    /// fsync until it succeeds: at once without a tolerance, else retried for its seconds.
    private func fsyncMount(step: Int) throws(FSXError) {
        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let deadline = Double(clock.tv_sec) + (tolerance?.seconds ?? 0)
        while true {
            do throws(CallError) {
                try mount.fsync()
                return
            } catch {
                try tolerate(error, step: step)
                clock_gettime(CLOCK_MONOTONIC, &clock)
                if Double(clock.tv_sec) > deadline {
                    throw FSXError.mismatch(step: step, "fsync kept failing with EIO for \(tolerance?.seconds ?? 0) s: the upload never succeeded")
                }
                usleep(500_000)
            }
        }
    }

    /// A call on the mount that reads through the cluster, retried on EIO when the tolerance
    /// says so (noted in the log).
    private func retryingReads<T>(_ step: Int, _ body: () throws(CallError) -> T) throws(FSXError) -> T {
        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let deadline = Double(clock.tv_sec) + (tolerance?.seconds ?? 0)
        while true {
            do throws(CallError) { return try body() } catch {
                guard tolerance?.retryReads == true, error.code == EIO else { throw FSXError.call(step: step, error) }
                clock_gettime(CLOCK_MONOTONIC, &clock)
                guard Double(clock.tv_sec) <= deadline else { throw FSXError.call(step: step, error) }
                summary.toleratedFailures += 1
                if !log.isEmpty, !log[log.count - 1].note.contains("retried") { log[log.count - 1].note += " [\(error.call): EIO, retried]" }
                usleep(500_000)
            }
        }
    }

    /// A close or fsync of the mount failed: fine only for EIO under a tolerance (noted in the log).
    private func tolerate(_ error: CallError, step: Int) throws(FSXError) {
        guard tolerance != nil, error.code == EIO else { throw FSXError.call(step: step, error) }
        summary.toleratedFailures += 1
        if !log.isEmpty { log[log.count - 1].note += " [\(error.call): EIO, tolerated]" }
        if verbose { say("       \(error.call) on the mount: EIO (tolerated)") }
    }

    // MARK: Checks

    /// After every step: fstat size, stat size, every byte.
    private func check(_ step: Int) throws(FSXError) {
        let expected = try call(step) { () throws(CallError) in try shadow.contents() }
        guard mount.fd >= 0 else { return }
        let size = try call(step) { () throws(CallError) in try mount.descriptorSize() }
        guard size == Int64(expected.count) else {
            throw FSXError.mismatch(step: step, "fstat size of the mounted file is \(size) (\(hex(size))), the shadow's \(expected.count) (\(hex(expected.count)))")
        }
        let pathSize = try call(step) { () throws(CallError) in try mount.pathSize() }
        guard pathSize == Int64(expected.count) else {
            throw FSXError.mismatch(step: step, "stat size of the mounted file is \(pathSize) (\(hex(pathSize))), the shadow's \(expected.count) (\(hex(expected.count)))")
        }
        let actual = try call(step) { () throws(CallError) in try mount.contents() }
        try compare(actual, expected, base: 0, what: "whole file", step: step)
    }

    /// The committed file, read through a fresh read-only descriptor, equals the shadow.
    private func compareCommitted(step: Int) throws(FSXError) {
        let expected = try call(step) { () throws(CallError) in
            let shadowFile = FileUnderTest(path: shadow.path, side: "shadow")
            return try shadowFile.contentsThroughFreshDescriptor()
        }
        let actual = try retryingReads(step) { () throws(CallError) in try mount.contentsThroughFreshDescriptor() }
        try compare(actual, expected, base: 0, what: "whole file through a fresh O_RDONLY descriptor", step: step)
    }

    private func compare(_ actual: [UInt8], _ expected: [UInt8], base: Int64, what: String, step: Int) throws(FSXError) {
        if Self.same(actual, expected) { return }
        var message = "\(what) at \(hex(base)): the mount returned \(actual.count) bytes, the shadow \(expected.count)"
        let common = min(actual.count, expected.count)
        let differing = (0..<common).filter { actual[$0] != expected[$0] }
        if let first = differing.first ?? (actual.count != expected.count ? common : nil) {
            let last = differing.last ?? first
            let offset = base + Int64(first)
            message += "\n  first difference at \(hex(offset)), last at \(hex(base + Int64(last)))"
            let from = max(0, first - 8)
            message += "\n  mount  @\(hex(base + Int64(from))): " + Self.dump(actual, from: from)
            message += "\n  shadow @\(hex(base + Int64(from))): " + Self.dump(expected, from: from)
            if let writer = log.last(where: { entry in entry.operation.touched(sizeBefore: entry.sizeBefore)?.contains(offset) == true }) {
                message += "\n  last step that changed \(hex(offset)): \(writer.step) \(writer.operation)"
            }
        }
        throw FSXError.mismatch(step: step, message)
    }

    /// Byte-for-byte equality with memcmp (an element-wise loop is slow in debug builds).
    static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in a.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
    }

    /// The step number right-aligned in 6 columns, and a space.
    static func stepLabel(_ step: Int) -> String {
        let text = String(step)
        return String(repeating: " ", count: max(0, 6 - text.count)) + text + " "
    }

    static func dump(_ bytes: [UInt8], from: Int) -> String {
        guard from < bytes.count else { return "(end of file)" }
        return bytes[from..<min(bytes.count, from + 24)].map { byte in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }.joined(separator: " ")
    }

    // MARK: Helpers

    private func call<T>(_ step: Int, _ body: () throws(CallError) -> T) throws(FSXError) -> T {
        do throws(CallError) { return try body() } catch { throw FSXError.call(step: step, error) }
    }

    /// The shadow first, then the mount; a call only the mount refuses is a mismatch.
    private func both(_ step: Int, _ body: (FileUnderTest) throws(CallError) -> Void) throws(FSXError) {
        try call(step) { () throws(CallError) in try body(shadow) }
        try call(step) { () throws(CallError) in try body(mount) }
    }

    private func runHooks(_ step: Int) throws(FSXError) {
        for command in hooks[step] ?? [] {
            say("fdfs-fsx: step \(step): running hook: \(command)")
            let status = Shell.run(command)
            guard status == 0 else { throw FSXError.hook(step: step, "`\(command)` exited with \(status)") }
        }
    }
}

/// Runs hook commands through /bin/sh, inheriting stdout and stderr.
enum Shell {
    static func run(_ command: String) -> Int32 {
        var pid: pid_t = 0
        let words: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { (word: String) -> UnsafeMutablePointer<CChar>? in strdup(word) } + [nil]
        defer { for arg in argv { free(arg) } }
        guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}
