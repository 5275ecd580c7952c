import FDFSFuzzTargets
import FDFSProtocol
import FDFSTestSupport

/// Frames a hostile client sends: every command code with random bodies, mutants of the
/// captured frames, headers whose length lies, and requests whose file names try to leave the
/// store path (each carrying `marker`, so an escaped file can be found afterwards).
struct HostileFrames {
    let seeds: [[UInt8]]
    let marker: String
    var generator: SeededGenerator
    var mutator = Mutator()

    init(seed: UInt64, marker: String) {
        let vectors = (try? Vectors.loadAll()) ?? []
        let frameTarget = FuzzTarget("frames", seeds: .frames) { _ in nil }
        seeds = FuzzRunner.seeds(for: frameTarget, vectors: vectors)
        self.marker = marker
        generator = SeededGenerator(state: seed)
    }

    static let commands: [UInt8] = [9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24, 25, 34, 35, 36, 37, 38, 40,
                                    59, 60, 69, 70, 71, 75, 76, 77, 79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93,
                                    94, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 111]
    static let lies: [Int64] = [Int64.max, -1, Int64.min, 1 << 40, (256 << 10) + 1, 64 << 20, 1 << 31, 0]

    /// Names that try to leave the store path, in the shapes the storage parses.
    var escapingNames: [String] {
        ["M00/00/00/../../../../../../../../tmp/\(marker)", "M00/../../../../\(marker)", "../../\(marker).txt",
         "M00/00/00/\(marker)/../../../../../../x", "M00/00/../00/..%2f..%2f\(marker)", "M00/00/00//\(marker)",
         "M99/00/00/\(marker)", "M00/0G/00/\(marker)", String(repeating: "../", count: 40) + marker]
    }

    func body(group: String, name: String) -> [UInt8] {
        Array(group.utf8.prefix(16)) + [UInt8](repeating: 0, count: max(0, 16 - group.utf8.count)) + Array(name.utf8)
    }

    /// The `index`th hostile input: one or more frames, as bytes.
    mutating func next(_ index: Int) -> [UInt8] {
        func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        switch index % 6 {
        case 0:
            // Every command code, with a random body and a true length.
            let body = random(Int.random(in: 0...300, using: &generator))
            return RawSocket.header(bodyLength: Int64(body.count), command: UInt8(truncatingIfNeeded: index / 6), status: 0) + body
        case 1, 2:
            let base = seeds[Int.random(in: 0..<seeds.count, using: &generator)]
            return mutator.mutate(base, corpus: seeds, using: &generator)
        case 3:
            // A header whose length lies, then a little of the body.
            let command = Self.commands.randomElement(using: &generator)!
            return RawSocket.header(bodyLength: Self.lies.randomElement(using: &generator)!, command: command, status: 0) + random(Int.random(in: 0...64, using: &generator))
        case 4:
            // A file request whose name tries to leave the store path.
            let command = [UInt8(11), 12, 13, 14, 15, 16, 17, 18, 19, 22, 23, 24, 34, 35, 36, 37, 38, 40, 102, 103, 105].randomElement(using: &generator)!
            let name = escapingNames.randomElement(using: &generator)!
            var body: [UInt8]
            switch command {
            case 14: body = [UInt8](repeating: 0, count: 16) + self.body(group: "group1", name: name)
            case 11, 23:
                // store_path_index, file_size, a 6-byte extension that tries a path, the bytes.
                let ext = Array(("../" + marker).utf8.prefix(6))
                body = [0] + [0, 0, 0, 0, 0, 0, 0, 5] + ext + [UInt8](repeating: 0, count: 6 - ext.count) + Array("hello".utf8)
            default: body = self.body(group: "group1", name: name)
            }
            return RawSocket.header(bodyLength: Int64(body.count), command: command, status: 0) + body
        default:
            // Several frames back to back, some valid, some not.
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 2...5, using: &generator) {
                bytes += Bool.random(using: &generator) ? RawSocket.header(bodyLength: 0, command: 111, status: 0) : next(index - index % 6 + Int.random(in: 0...4, using: &generator))
            }
            return bytes
        }
    }
}
