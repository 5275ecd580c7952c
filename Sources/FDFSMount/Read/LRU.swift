/// Least-recently-used order with O(1) insert, touch and removal, and the bytes held.
struct LRU<Key: Hashable> {
    private var index: [Key: Int] = [:]
    private var keysByNode: [Key?] = []
    private var sizes: [Int64] = []
    private var prev: [Int] = []
    private var next: [Int] = []
    private var free: [Int] = []
    private var head = -1 // most recent
    private var tail = -1 // least recent
    private(set) var used: Int64 = 0

    var count: Int { index.count }
    var keys: Dictionary<Key, Int>.Keys { index.keys }

    func contains(_ key: Key) -> Bool { index[key] != nil }

    mutating func insert(_ key: Key, size: Int64) {
        if index[key] != nil { _ = remove(key) }
        let node: Int
        if let reuse = free.popLast() {
            node = reuse
            keysByNode[node] = key
            sizes[node] = size
        } else {
            node = keysByNode.count
            keysByNode.append(key)
            sizes.append(size)
            prev.append(-1)
            next.append(-1)
        }
        index[key] = node
        used += size
        pushFront(node)
    }

    /// Marks a key as just used; false when absent.
    mutating func touch(_ key: Key) -> Bool {
        guard let node = index[key] else { return false }
        unlink(node)
        pushFront(node)
        return true
    }

    mutating func remove(_ key: Key) -> Bool {
        guard let node = index.removeValue(forKey: key) else { return false }
        unlink(node)
        used -= sizes[node]
        keysByNode[node] = nil
        free.append(node)
        return true
    }

    mutating func removeOldest() -> Key? {
        guard tail >= 0, let key = keysByNode[tail] else { return nil }
        _ = remove(key)
        return key
    }

    private mutating func pushFront(_ node: Int) {
        prev[node] = -1
        next[node] = head
        if head >= 0 { prev[head] = node }
        head = node
        if tail < 0 { tail = node }
    }

    private mutating func unlink(_ node: Int) {
        let p = prev[node], n = next[node]
        if p >= 0 { next[p] = n } else { head = n }
        if n >= 0 { prev[n] = p } else { tail = p }
        prev[node] = -1
        next[node] = -1
    }
}
