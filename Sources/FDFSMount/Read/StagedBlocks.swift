/// Fetched blocks the cache did not take (``BlockStore/shouldCache(_:_:)`` said no), kept in
/// memory until a READ has used their last byte, so that a read-ahead fetch, or a demand fetch
/// read in several requests, is not fetched again. Each keeps its share of the fetch memory
/// budget; the oldest go first when they hold more than `limit` bytes or a demand fetch needs
/// the memory.
struct StagedBlocks: Sendable {
    let limit: Int64
    private var blocks: [BlockKey: Block] = [:]
    /// Oldest first.
    private var order: [BlockKey] = []
    private(set) var bytes: Int64 = 0

    init(limit: Int64) { self.limit = limit }

    func block(_ key: BlockKey) -> Block? { blocks[key] }

    /// Adds a block; returns the blocks pushed out to stay within `limit`.
    mutating func put(_ key: BlockKey, _ block: Block) -> [Block] {
        guard blocks[key] == nil else { return [block] }
        blocks[key] = block
        order.append(key)
        bytes += Int64(block.length)
        var out: [Block] = []
        while bytes > limit, let oldest = removeOldest() { out.append(oldest) }
        return out
    }

    mutating func remove(_ key: BlockKey) -> Block? {
        guard let block = blocks.removeValue(forKey: key) else { return nil }
        order.removeAll { $0 == key }
        bytes -= Int64(block.length)
        return block
    }

    mutating func removeAll(of file: FileVersion) -> [Block] {
        order.filter { $0.file == file }.compactMap { remove($0) }
    }

    mutating func removeOldest() -> Block? {
        guard let key = order.first else { return nil }
        return remove(key)
    }
}
