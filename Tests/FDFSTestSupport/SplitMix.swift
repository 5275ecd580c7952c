/// A small seeded generator (SplitMix64) for repeatable "random" test inputs: the same seed
/// gives the same numbers on every machine.
public struct SplitMix: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Seeded as the protocol tests always were (the seed is advanced once first).
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    /// Starting exactly at `state` (the fuzz runners' sequences).
    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
