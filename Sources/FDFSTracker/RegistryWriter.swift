import Dispatch
import Logging
import Synchronization

/// Saves registry snapshots on one serial writer queue, off the registry lock and off the event
/// loops. Snapshots are taken under the lock (a copy-on-write value, so the copy is cheap);
/// a newer snapshot replaces one not yet written (coalescing), and the queue writes them in the
/// order they were taken, so the file never goes back to an older state.
final class RegistryWriter: Sendable {
    private let store: RegistryStore
    private let logger: Logger
    private let queue = DispatchQueue(label: "fdfs.tracker.state-writer")
    private let metrics: TrackerMetrics

    private struct Pending {
        var snapshot: TrackerRegistry?
        var draining = false
    }
    private let pending = Mutex(Pending())

    init(store: RegistryStore, logger: Logger, metrics: TrackerMetrics) {
        self.store = store
        self.logger = logger
        self.metrics = metrics
    }

    /// Queues `snapshot` for saving (replacing a queued one that was not written yet). Call it
    /// with the snapshots in the order they were taken, e.g. under the registry lock.
    func submit(_ snapshot: TrackerRegistry) {
        let start = pending.withLock { state -> Bool in
            state.snapshot = snapshot
            guard !state.draining else { return false }
            state.draining = true
            return true
        }
        if start { queue.async { self.drain() } }
    }

    /// Waits until every snapshot submitted before the call is on disk.
    func flush() {
        queue.sync {}
    }

    /// Waits, without holding a thread, until every snapshot submitted before the call is on
    /// disk.
    func flushed() async {
        await withCheckedContinuation { continuation in queue.async { continuation.resume() } }
    }

    private func drain() {
        while true {
            let next = pending.withLock { state -> TrackerRegistry? in
                guard let snapshot = state.snapshot else {
                    state.draining = false
                    return nil
                }
                state.snapshot = nil
                return snapshot
            }
            guard let next else { return }
            do {
                try store.save(next)
                metrics.stateSaves.increment()
            } catch {
                metrics.stateSaveFailures.increment()
                logger.error("saving the tracker state failed: \(error)")
            }
        }
    }
}
