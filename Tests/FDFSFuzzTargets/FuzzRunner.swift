import FDFSProtocol
import FDFSTestSupport

/// The fuzz runners' generator: SplitMix64 started at the run's seed, so a run repeats.
public typealias SeededGenerator = SplitMix


/// Seeds from the captured vectors and a mutation loop for targets run without libFuzzer
/// (in `Scripts/test`, and by `fdfs-fuzz` in a plain build).
public enum FuzzRunner {
    /// The seed inputs of `target` taken from `vectors` (at least one, possibly empty, input).
    public static func seeds(for target: FuzzTarget, vectors: [VectorFile]) -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        switch target.seeds {
        case .requests(let commands):
            let codes = Set(commands.map(\.rawValue))
            for file in vectors { for frame in file.frames where codes.contains(UInt8(frame.cmd)) { seeds.append(frame.bodyBytes) } }
        case .lengthAndRequests(let commands):
            let codes = Set(commands.map(\.rawValue))
            for file in vectors { for frame in file.frames where codes.contains(UInt8(frame.cmd)) { seeds.append(Array(frame.bytes.prefix(8)) + frame.bodyBytes) } }
        case .responses(let commands):
            let codes = Set(commands.map(\.rawValue))
            for file in vectors {
                for exchange in file.exchanges where codes.contains(UInt8(exchange.request.cmd)) {
                    if let response = exchange.response { seeds.append(response.bodyBytes) }
                }
            }
        case .frames:
            for file in vectors { for frame in file.frames { seeds.append(frame.bytes) } }
            if let first = vectors.first { seeds.append(first.frames.flatMap(\.bytes)) }
        case .text(let samples):
            seeds = samples.map { Array($0.utf8) }
        }
        return seeds.isEmpty ? [[]] : seeds
    }

    /// What a run found: how many inputs it tried and the first findings (input and message).
    public struct Report: Sendable {
        public var executed = 0
        public var findings: [(input: [UInt8], message: String)] = []
    }

    /// Runs every seed, then `iterations` mutants of them. Stops collecting after 10 findings.
    public static func run(_ target: FuzzTarget, seeds: [[UInt8]], iterations: Int, seed: UInt64) -> Report {
        var report = Report()
        var generator = SeededGenerator(state: seed)
        var mutator = Mutator()
        func attempt(_ input: [UInt8]) {
            report.executed += 1
            if let message = target.run(input), report.findings.count < 10 { report.findings.append((input, message)) }
        }
        for input in seeds { attempt(input) }
        for _ in 0..<iterations {
            let base = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
            attempt(mutator.mutate(base, corpus: seeds, using: &generator))
        }
        return report
    }
}

/// Byte-level mutations in the style of libFuzzer's: bit flips, interesting integers at
/// 8-byte fields, insertions, deletions, duplications, splices and hostile text tokens.
public struct Mutator: Sendable {
    static let integers: [Int64] = [0, 1, -1, 7, 15, 16, 17, 255, 256, 4096, 65536, 1 << 31, 1 << 32, Int64.max, Int64.min, Int64(Int32.max), -4096]
    static let tokens: [[UInt8]] = ["../", "%00", "%0d%0a", "\n", "\r\n", "=", "-", ",", "[", "]", ":", "/", "\0", "M00/", "group1", "bytes=", "%2e%2e%2f", "#include "].map { Array($0.utf8) }

    public init() {}

    public mutating func mutate(_ input: [UInt8], corpus: [[UInt8]], using generator: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes = input
        let rounds = Int.random(in: 1...4, using: &generator)
        for _ in 0..<rounds { mutateOnce(&bytes, corpus: corpus, using: &generator) }
        if bytes.count > 1 << 16 { bytes.removeLast(bytes.count - (1 << 16)) }
        return bytes
    }

    private func mutateOnce(_ bytes: inout [UInt8], corpus: [[UInt8]], using g: inout some RandomNumberGenerator) {
        func position(_ extra: Int = 0) -> Int { Int.random(in: 0...max(0, bytes.count - 1 + extra), using: &g) }
        switch Int.random(in: 0..<9, using: &g) {
        case 0 where !bytes.isEmpty:
            bytes[position()] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &g)
        case 1 where !bytes.isEmpty:
            bytes[position()] = [0, 0xFF, 0x7F, 0x80, 0x20, 0x2F, 0x2E, 0x3D].randomElement(using: &g)!
        case 2:
            var value = Self.integers.randomElement(using: &g)!.bigEndian
            let field = withUnsafeBytes(of: &value) { Array($0) }
            let at = position(1)
            if at + 8 <= bytes.count { bytes.replaceSubrange(at..<(at + 8), with: field) } else { bytes.insert(contentsOf: field, at: at) }
        case 3:
            let count = Int.random(in: 1...16, using: &g)
            bytes.insert(contentsOf: (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }, at: position(1))
        case 4 where !bytes.isEmpty:
            let start = position()
            bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...32, using: &g)))
        case 5 where !bytes.isEmpty:
            let start = position()
            let piece = Array(bytes[start..<min(bytes.count, start + Int.random(in: 1...64, using: &g))])
            bytes.insert(contentsOf: piece, at: position(1))
        case 6:
            let other = corpus.randomElement(using: &g)!
            guard !other.isEmpty else { return }
            let start = Int.random(in: 0..<other.count, using: &g)
            bytes.insert(contentsOf: other[start..<min(other.count, start + Int.random(in: 1...128, using: &g))], at: position(1))
        case 7:
            bytes.insert(contentsOf: Self.tokens.randomElement(using: &g)!, at: position(1))
        default:
            if !bytes.isEmpty { bytes.removeLast(Int.random(in: 1...bytes.count, using: &g)) }
        }
    }
}
