import ArgumentParser
import FDFSProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `fdfs-fsx [options] FILE SHADOW`: a random-operation exerciser in the spirit of fsx. It runs a
/// seeded, repeatable sequence of reads, writes, truncations, appends, mappings, fsyncs and
/// reopens on FILE (in an fdfs mount) and on SHADOW (in an ordinary directory), and compares
/// the whole content and size after every step. The same seed and options replay a run.
@main
struct FSXCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdfs-fsx",
        abstract: "Random file operations on a mounted file, checked against a shadow file after every step.",
        discussion: """
            Operations: \(OperationKind.allCases.map(\.rawValue).joined(separator: ", ")).
            On the first mismatch it prints the seed, the step and the operation log, writes the log \
            to SHADOW.fsxlog and the mounted file's content to SHADOW.fsxbad, and exits 1. \
            `fdfs-fsx --seed S --ops N FILE SHADOW` (with the same options) replays a run.
            """)

    @Option(help: "Seed of the run (default: from the clock; printed).") var seed: UInt64?
    @Option(help: "Number of operations.") var ops = 1000
    @Option(help: "Largest file size (K/M/G suffixes).") var maxSize = "4M"
    @Option(help: "Largest single write or read (K/M/G suffixes).") var maxWrite = "1M"
    @Option(help: "Only these operations (comma-separated).") var only: String?
    @Option(help: "Leave out these operations (comma-separated).") var without: String?
    @Option(help: "Tolerate EIO from close() and fsync() of the mount for up to this many seconds of retries (while a storage is down).")
    var tolerateEio: Double?
    @Flag(help: "With --tolerate-eio: also retry opens and read-backs of the mount that fail with EIO (appendable mode while an appender file's source storage is down).")
    var retryReads = false
    @Option(help: "STEP:COMMAND, run with /bin/sh before step STEP (repeatable).") var hook: [String] = []
    @Flag(name: .shortAndLong, help: "Print every operation.") var verbose = false
    @Argument(help: "The file in the mount (created or truncated).") var file: String
    @Argument(help: "The shadow file in an ordinary directory (created or truncated).") var shadow: String

    func run() throws {
        let seed = self.seed ?? UInt64(truncatingIfNeeded: Int64(time(nil))) &* 2_654_435_761 ^ UInt64(getpid())
        let limits = try planLimits()
        let hooks = try parsedHooks()
        let exerciser = Exerciser(seed: seed, steps: ops, limits: limits, file: file, shadow: shadow,
                                  tolerance: tolerateEio.map { EIOTolerance(seconds: $0, retryReads: retryReads) }, hooks: hooks, verbose: verbose)
        say("fdfs-fsx: seed \(seed), \(ops) operations, max size \(hex(limits.maxFileSize)), max write \(hex(limits.maxWriteSize)), operations \(limits.kinds.map(\.rawValue).joined(separator: ","))")
        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let started = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9
        do throws(FSXError) {
            let summary = try exerciser.run()
            clock_gettime(CLOCK_MONOTONIC, &clock)
            let seconds = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9 - started
            let counts = OperationKind.allCases.compactMap { kind in summary.counts[kind].map { "\(kind.rawValue) \($0)" } }.joined(separator: ", ")
            say("fdfs-fsx: seed \(seed): \(summary.steps) operations OK in \(String(Double(Int(seconds * 10)) / 10)) s (\(counts)); EIO tolerated: \(summary.toleratedFailures)")
        } catch {
            report(error, seed: seed, exerciser: exerciser, limits: limits)
            throw ExitCode(1)
        }
    }

    /// The failure, the operation log and the line that replays it.
    func report(_ error: FSXError, seed: UInt64, exerciser: Exerciser, limits: PlanLimits) {
        var text = "fdfs-fsx: seed \(seed): \(error)\n"
        let lines = exerciser.log.map { entry in
            Exerciser.stepLabel(entry.step) + entry.operation.description + "  [size before \(hex(entry.sizeBefore))]" + entry.note
        }
        let shown = lines.suffix(60)
        text += "operation log (\(shown.count == lines.count ? "all \(lines.count) steps" : "last \(shown.count) of \(lines.count) steps; all in \(shadow).fsxlog")):\n"
        text += shown.joined(separator: "\n") + "\n"
        var replay = ["fdfs-fsx", "--seed", "\(seed)", "--ops", "\(error.step.map { max($0, 1) } ?? ops)", "--max-size", maxSize, "--max-write", maxWrite]
        if let only { replay += ["--only", only] }
        if let without { replay += ["--without", without] }
        if let tolerateEio { replay += ["--tolerate-eio", "\(tolerateEio)"] }
        if retryReads { replay.append("--retry-reads") }
        for item in hook { replay += ["--hook", "'\(item)'"] }
        text += "replay: " + (replay + ["'\(file)'", "'\(shadow)'"]).joined(separator: " ") + "\n"
        FileHandleOutput.write(text, to: 2)
        FileHandleOutput.save((lines.joined(separator: "\n") + "\n" + "replay: " + replay.joined(separator: " ") + "\n").utf8.map { $0 }, to: shadow + ".fsxlog")
        if let bad = try? FileUnderTest(path: file, side: "mount").contentsThroughFreshDescriptor() {
            FileHandleOutput.save(bad, to: shadow + ".fsxbad")
        }
    }

    func planLimits() throws -> PlanLimits {
        guard let maxFileSize = FDFSConfig.parseSize(maxSize), maxFileSize > 0 else { throw ValidationError("bad --max-size \(maxSize)") }
        guard let maxWriteSize = FDFSConfig.parseSize(maxWrite), maxWriteSize > 0 else { throw ValidationError("bad --max-write \(maxWrite)") }
        var kinds = Set(OperationKind.allCases)
        do throws(FSXError) {
            if let only { kinds = try OperationKind.list(only) }
            if let without { kinds.subtract(try OperationKind.list(without)) }
        } catch {
            throw ValidationError(error.description)
        }
        guard !kinds.isEmpty else { throw ValidationError("no operations left to run") }
        return PlanLimits(maxFileSize: maxFileSize, maxWriteSize: min(maxWriteSize, maxFileSize),
                          kinds: OperationKind.allCases.filter { kinds.contains($0) })
    }

    func parsedHooks() throws -> [Int: [String]] {
        var hooks: [Int: [String]] = [:]
        for item in hook {
            guard let colon = item.firstIndex(of: ":"), let step = Int(item[..<colon]), step >= 1 else {
                throw ValidationError("bad --hook \(item): expected STEP:COMMAND")
            }
            hooks[step, default: []].append(String(item[item.index(after: colon)...]))
        }
        return hooks
    }
}

/// Prints a line on standard output at once (unbuffered, so it interleaves with hook output).
func say(_ line: String) { FileHandleOutput.write(line + "\n", to: 1) }

/// Writing reports without Foundation.
enum FileHandleOutput {
    static func write(_ text: String, to descriptor: Int32) {
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, $0.count - done) }
            if n <= 0 { return }
            done += n
        }
    }

    static func save(_ bytes: [UInt8], to path: String) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, $0.count - done) }
            if n <= 0 { return }
            done += n
        }
    }
}
