import Synchronization

/// A byte budget shared by every fetch in flight (demand and read-ahead): one global limit,
/// taken before the bytes arrive.
public final class MemoryBudget: Sendable {
    private struct State {
        var used: Int64 = 0
        var waiters: [(amount: Int64, continuation: CheckedContinuation<Void, Never>)] = []
    }

    public let limit: Int64
    private let state = Mutex(State())

    public init(limit: Int64) {
        self.limit = max(limit, 1)
    }

    public var used: Int64 { state.withLock { $0.used } }

    /// Takes `amount` if it fits now (read-ahead uses this and skips when it does not).
    public func tryAcquire(_ amount: Int64) -> Bool {
        state.withLock { s in
            guard s.waiters.isEmpty, s.used + amount <= limit else { return false }
            s.used += amount
            return true
        }
    }

    /// Waits until `amount` fits (a single request larger than the limit is let through alone).
    public func acquire(_ amount: Int64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { s -> Bool in
                if s.waiters.isEmpty && (s.used + amount <= limit || s.used == 0) {
                    s.used += amount
                    return true
                }
                s.waiters.append((amount, continuation))
                return false
            }
            if granted { continuation.resume() }
        }
    }

    public func release(_ amount: Int64) {
        let wake = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.used -= amount
            var ready: [CheckedContinuation<Void, Never>] = []
            while let first = s.waiters.first, s.used + first.amount <= limit || s.used == 0 {
                s.used += first.amount
                ready.append(first.continuation)
                s.waiters.removeFirst()
            }
            return ready
        }
        for continuation in wake { continuation.resume() }
    }
}

/// An async mutual exclusion (FIFO), for serialising uploads of one file.
public final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    public init() {}

    public func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { s -> Bool in
                if !s.locked {
                    s.locked = true
                    return true
                }
                s.waiters.append(continuation)
                return false
            }
            if acquired { continuation.resume() }
        }
    }

    public func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.locked = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
