import FDFSFuzzTargets
import FDFSTestSupport
import Foundation

#if FUZZING
/// libFuzzer's entry point (`Scripts/fuzz` builds with `--sanitize fuzzer -DFUZZING`); the
/// target comes from `FDFS_FUZZ_TARGET`. A broken invariant aborts, so libFuzzer keeps the input.
nonisolated(unsafe) private var selected: FuzzTarget?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if selected == nil {
        let name = ProcessInfo.processInfo.environment["FDFS_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTargets.named(name) else {
            fatalError("FDFS_FUZZ_TARGET='\(name)' is not one of: \(FuzzTargets.all.map(\.name).joined(separator: " "))")
        }
        selected = target
    }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let finding = selected!.run(bytes) { fatalError(finding) }
    return 0
}
#else
/// Without libFuzzer: `fdfs-fuzz list`, `fdfs-fuzz seeds TARGET DIR` (writes the target's seed
/// corpus), and `fdfs-fuzz run TARGET [ITERATIONS] [SEED]` (the seeded mutation loop).
@main struct FuzzMain {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "list":
            for target in FuzzTargets.all { print(target.name) }
        case "seeds" where arguments.count == 3:
            let target = try named(arguments[1])
            try FileManager.default.createDirectory(atPath: arguments[2], withIntermediateDirectories: true)
            let seeds = FuzzRunner.seeds(for: target, vectors: try Vectors.loadAll())
            for (index, seed) in seeds.enumerated() {
                try Data(seed).write(to: URL(fileURLWithPath: arguments[2] + "/seed-\(index)"))
            }
            print(seeds.count)
        case "run" where arguments.count >= 2:
            let target = try named(arguments[1])
            let iterations = arguments.count > 2 ? Int(arguments[2]) ?? 100_000 : 100_000
            let seed = arguments.count > 3 ? UInt64(arguments[3]) ?? 1 : 1
            let report = FuzzRunner.run(target, seeds: FuzzRunner.seeds(for: target, vectors: try Vectors.loadAll()), iterations: iterations, seed: seed)
            print("\(target.name): \(report.executed) inputs, \(report.findings.count) findings")
            for finding in report.findings { print("  \(finding.message)\n  input: \(Hex.encode(finding.input))") }
            if !report.findings.isEmpty { exit(1) }
        default:
            FileHandle.standardError.write(Data("usage: fdfs-fuzz list | seeds TARGET DIR | run TARGET [ITERATIONS] [SEED]\n".utf8))
            exit(2)
        }
    }

    static func named(_ name: String) throws -> FuzzTarget {
        guard let target = FuzzTargets.named(name) else { throw FuzzUsageError(description: "no fuzz target '\(name)'; `fdfs-fuzz list` names them") }
        return target
    }
}

struct FuzzUsageError: Error, CustomStringConvertible { let description: String }
#endif
