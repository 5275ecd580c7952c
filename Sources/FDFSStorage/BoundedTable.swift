/// At most `capacity` values by key, the oldest inserted forgotten first (changing a value
/// keeps its place): the storage's memory-only tables (``AppenderChecksums``,
/// ``RegeneratedAppenders``). Inserting is amortised O(1).
struct BoundedTable<Value: Sendable>: Sendable {
    let capacity: Int
    private var values: [String: (value: Value, sequence: UInt64)] = [:]
    /// Keys in insertion order with the sequence they were inserted with, from `head` on. A key
    /// removed (or removed and inserted again) since leaves a stale element, skipped by eviction.
    private var order: [(key: String, sequence: UInt64)] = []
    private var head = 0
    private var next: UInt64 = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
    }

    var count: Int { values.count }

    subscript(key: String) -> Value? { values[key]?.value }

    /// Sets the value of `key`; a new key is the newest, and the oldest go beyond `capacity`.
    mutating func set(_ key: String, _ value: Value) {
        if let existing = values[key] {
            values[key] = (value, existing.sequence)
            return
        }
        next += 1
        values[key] = (value, next)
        order.append((key, next))
        while values.count > capacity, head < order.count {
            let oldest = order[head]
            head += 1
            if values[oldest.key]?.sequence == oldest.sequence { values[oldest.key] = nil }
        }
        // Stale elements (evicted, or removed without an eviction) are dropped now and then.
        if head > capacity || order.count - head > 2 * capacity {
            order = values.map { (key: $0.key, sequence: $0.value.sequence) }.sorted { $0.sequence < $1.sequence }
            head = 0
        }
    }

    @discardableResult
    mutating func remove(_ key: String) -> Value? {
        values.removeValue(forKey: key)?.value
    }
}
