import Synchronization

/// Taking over the journal of a mount that died (shared PostgreSQL namespace, schema version
/// 4): a session without a heartbeat for `session_timeout=` is claimed by exactly one live
/// mount (``MappingStore/claimSession(_:before:)``), which finishes its rows as the crash
/// recovery finishes a mount's own — except that an upload whose file ID was not recorded
/// cannot be redone here (its bytes were in the dead mount's spool): the pending row goes, and
/// so does its name if it never had content.
extension FDFSFileSystem {
    /// Claims every dead session and finishes its journal. Returns how many sessions this
    /// mount claimed (another mount racing for the same session gets none of them).
    @discardableResult
    public func takeOverDeadSessions() async -> Int {
        guard store.engine == .postgres else { return 0 }
        let before = Self.unixNow - sessionLifetime
        var claimed = 0
        do {
            for dead in try store.deadSessions(before: before) where try store.claimSession(dead, before: before) {
                logger.notice("taking over the journal of mount session \(dead) (no heartbeat for \(sessionLifetime) s)")
                takeovers.claimed()
                claimed += 1
            }
        } catch {
            logger.warning("cannot take over dead mount sessions: \(error); will retry")
        }
        let unfinished = takeovers.takeUnfinished()
        if claimed > 0 {
            try? store.adoptUnownedMetadata()
        }
        if claimed > 0 || unfinished {
            await recover(.takenOver(by: sessionID))
            await processDeletions()
        }
        return claimed
    }

    /// How many dead sessions this mount has claimed since it started.
    public var sessionsTakenOver: Int { takeovers.count }
}

/// What this mount's takeovers left: how many sessions it claimed, and whether a takeover's
/// recovery failed (the next background pass tries again).
final class Takeovers: Sendable {
    private struct State {
        var count = 0
        var unfinished = false
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.count } }

    func claimed() { state.withLock { $0.count += 1 } }

    /// A takeover's recovery failed.
    func failed() { state.withLock { $0.unfinished = true } }

    /// Whether a recovery failed since the last call.
    func takeUnfinished() -> Bool {
        state.withLock { s in
            defer { s.unfinished = false }
            return s.unfinished
        }
    }
}
