import Synchronization

/// The connections of a ``MappingStore``: one for SQLite (one writer at a time anyway), up to
/// a few for PostgreSQL, so that a slow statement of one caller does not hold every other
/// caller (and parallel writers keep the server busy). Each call runs wholly on one connection
/// (a transaction never spans two). The first connection opens with the store; the others only
/// when a call finds every open one busy.
final class MetadataPool: Sendable {
    /// One connection slot (a class: a `Mutex` cannot be copied into an array).
    private final class Slot: Sendable {
        let connection: Mutex<(any MetadataConnection)?>
        init(_ connection: sending (any MetadataConnection)?) { self.connection = Mutex(connection) }
    }

    private let slots: [Slot]
    private let open: (@Sendable () throws(FSError) -> sending any MetadataConnection)?
    private let next = Atomic<Int>(0)

    /// `first` is the connection the store prepared the schema on; `open` makes the others
    /// (up to `size` in all; nil: `first` alone).
    init(first: sending any MetadataConnection, size: Int = 1, open: (@Sendable () throws(FSError) -> sending any MetadataConnection)? = nil) {
        var slots = [Slot(first)]
        if open != nil { for _ in 1..<max(size, 1) { slots.append(Slot(nil)) } }
        self.slots = slots
        self.open = open
    }

    /// Runs `body` on a free connection (opened if needed), or waits for one.
    func with<T: Sendable>(_ body: (any MetadataConnection) throws(FSError) -> T) throws(FSError) -> T {
        let open = self.open
        func use(_ slot: inout (any MetadataConnection)?) throws(FSError) -> T {
            if slot == nil, let open { slot = try open() }
            guard let connection = slot else { throw FSError(.io, "no metadata connection") }
            return try body(connection)
        }
        if slots.count > 1 {
            for slot in slots {
                if let result = try slot.connection.withLockIfAvailable({ (connection: inout (any MetadataConnection)?) throws(FSError) -> T in try use(&connection) }) {
                    return result
                }
            }
        }
        let index = next.add(1, ordering: .relaxed).oldValue % slots.count
        return try slots[index].connection.withLock { (connection: inout (any MetadataConnection)?) throws(FSError) -> T in try use(&connection) }
    }
}
