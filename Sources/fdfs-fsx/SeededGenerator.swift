/// A seeded, repeatable pseudo-random generator (SplitMix64). The same seed draws the same
/// numbers on every machine and with every toolchain: the exerciser never uses the standard
/// library's `random(in:using:)`, whose algorithm is not promised to stay the same.
struct SeededGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound` (0 when `bound` is 0 or less).
    mutating func below(_ bound: Int64) -> Int64 {
        bound <= 0 ? 0 : Int64(next() % UInt64(bound))
    }

    /// A number in `range` (inclusive).
    mutating func inRange(_ range: ClosedRange<Int64>) -> Int64 {
        range.lowerBound + below(range.upperBound - range.lowerBound + 1)
    }

    /// True with probability `percent` / 100.
    mutating func chance(_ percent: Int64) -> Bool { below(100) < percent }

    /// Fills `count` bytes at `pointer` with random bytes.
    mutating func fill(_ pointer: UnsafeMutableRawPointer, count: Int) {
        var offset = 0
        while offset < count {
            var value = next()
            let n = min(8, count - offset)
            withUnsafeBytes(of: &value) { (pointer + offset).copyMemory(from: $0.baseAddress!, byteCount: n) }
            offset += n
        }
    }
}

extension SeededGenerator {
    /// The bytes a data-carrying operation writes: a stream of its own, seeded by the run's seed
    /// and the step, so the data never shifts the sequence of operations.
    static func payload(seed: UInt64, step: Int, count: Int) -> [UInt8] {
        var generator = SeededGenerator(seed: seed ^ (UInt64(step) &* 0xD6E8_FEB8_6659_FD93))
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { generator.fill(buffer.baseAddress!, count: count) }
            initialized = count
        }
    }
}
