/// What a run draws from: sizes and the kinds of operation allowed.
struct PlanLimits: Sendable {
    /// The file never grows past this.
    var maxFileSize: Int64
    /// The largest single write (large writes cross the mount's 1 MiB blocks).
    var maxWriteSize: Int64
    /// The kinds drawn.
    var kinds: [OperationKind]
}

/// Draws the operations of a run from a seeded generator. Each draw depends only on the seed,
/// the draws before it and the size of the file (which the shadow file makes deterministic),
/// so the same seed replays the same run.
struct Planner {
    private var generator: SeededGenerator
    let limits: PlanLimits
    private let totalWeight: Int64
    /// Boundaries where the mount changes how it handles bytes: pages and cache blocks.
    static let page: Int64 = 4096
    static let block: Int64 = 1 << 20

    init(seed: UInt64, limits: PlanLimits) {
        generator = SeededGenerator(seed: seed)
        self.limits = limits
        totalWeight = limits.kinds.reduce(0) { $0 + $1.weight }
    }

    /// The next operation for a file of `size` bytes.
    mutating func next(size: Int64) -> Operation {
        while true {
            if let operation = draw(pickKind(), size: size) { return operation }
        }
    }

    private mutating func pickKind() -> OperationKind {
        var ticket = generator.below(totalWeight)
        for kind in limits.kinds {
            if ticket < kind.weight { return kind }
            ticket -= kind.weight
        }
        return limits.kinds[0]
    }

    /// An operation of `kind`, or nil when it cannot apply to a file of `size` bytes.
    private mutating func draw(_ kind: OperationKind, size: Int64) -> Operation? {
        let max = limits.maxFileSize
        switch kind {
        case .read:
            guard size > 0 else { return nil }
            let offset = generator.below(size)
            return .read(offset: offset, length: Int(generator.inRange(1...Swift.min(size - offset, limits.maxWriteSize))))
        case .write:
            let length = writeLength(room: max)
            let offset = writeOffset(length: length, size: size)
            return length > 0 ? .write(offset: offset, length: Int(length)) : nil
        case .seqwrite:
            let chunk = generator.chance(50) ? Int64(64 << 10) : generator.inRange(1...Self.page * 16)
            let chunks = Swift.min(generator.inRange(2...16), (max - size) / chunk)
            return chunks >= 1 ? .sequentialWrite(chunks: Int(chunks), chunk: Int(chunk)) : nil
        case .truncate, .ftruncate:
            let target = newSize(size)
            return kind == .truncate ? .truncate(size: target) : .ftruncate(size: target)
        case .append:
            let length = writeLength(room: max - size)
            return length > 0 ? .append(length: Int(length)) : nil
        case .mapread:
            guard size > 0 else { return nil }
            let offset = generator.below(size)
            return .mapRead(offset: offset, length: Int(generator.inRange(1...Swift.min(size - offset, limits.maxWriteSize))),
                            shared: generator.chance(50))
        case .mapwrite:
            let length = writeLength(room: max)
            let offset = writeOffset(length: length, size: size)
            return length > 0 ? .mapWrite(offset: offset, length: Int(length), sync: generator.chance(50)) : nil
        case .fsync: return .fsync
        case .reopen: return .reopen
        case .otrunc: return .reopenTruncating
        }
    }

    /// Mostly small writes (up to 16 pages), a third large ones (up to maxWriteSize).
    private mutating func writeLength(room: Int64) -> Int64 {
        guard room > 0 else { return 0 }
        let length = generator.chance(33) ? generator.inRange(1...limits.maxWriteSize) : generator.inRange(1...Self.page * 16)
        return Swift.min(length, room)
    }

    /// Inside the file, at its end, past it (a hole), or at a page or block boundary.
    private mutating func writeOffset(length: Int64, size: Int64) -> Int64 {
        let limit = limits.maxFileSize - length
        let offset: Int64
        switch generator.below(10) {
        case 0..<5: offset = generator.below(Swift.max(size, 1))
        case 5..<7: offset = Swift.max(0, size - generator.below(Self.page + 1))
        case 7..<9: offset = size + generator.below(Swift.max(1, limits.maxFileSize / 4))
        default:
            let unit = generator.chance(50) ? Self.page : Self.block
            offset = Swift.max(0, unit * generator.below(limits.maxFileSize / unit + 1) + generator.inRange(-2...2))
        }
        return Swift.min(offset, Swift.max(0, limit))
    }

    /// Smaller or larger, sometimes zero, sometimes on a block boundary.
    private mutating func newSize(_ size: Int64) -> Int64 {
        switch generator.below(10) {
        case 0: return 0
        case 1: return Swift.min(limits.maxFileSize, Self.block * generator.below(limits.maxFileSize / Self.block + 1))
        case 2..<6: return generator.below(size + 1)
        default: return generator.inRange(size...limits.maxFileSize)
        }
    }
}
