import FDFSFuzzTargets
import FDFSTestSupport
import Foundation
import Testing

/// Every decoder of untrusted input against its captured seeds and mutants of them (seeded, so
/// a failure repeats). A crash ends the test process, which fails the suite loudly; a broken
/// invariant is reported with the input in hex. `FDFS_FUZZ_ITERATIONS` sets the mutants per
/// target (default 2 000); `Scripts/fuzz` runs the same targets under libFuzzer for longer.
@Suite struct DecoderFuzzTests {
    static let vectors: [VectorFile] = (try? Vectors.loadAll()) ?? []
    static let iterations = Int(ProcessInfo.processInfo.environment["FDFS_FUZZ_ITERATIONS"] ?? "") ?? 2_000

    @Test func theVectorsAreThere() throws {
        #expect(!Self.vectors.isEmpty, "the captured vectors seed the fuzz corpus: \(String(describing: try? Vectors.directory()))")
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func decoderSurvivesHostileInput(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let seeds = FuzzRunner.seeds(for: target, vectors: Self.vectors)
        let report = FuzzRunner.run(target, seeds: seeds, iterations: Self.iterations, seed: 0x6664_6673)
        #expect(report.executed == seeds.count + Self.iterations)
        for finding in report.findings {
            Issue.record("\(finding.message)\ninput: \(Hex.encode(finding.input))")
        }
    }
}
