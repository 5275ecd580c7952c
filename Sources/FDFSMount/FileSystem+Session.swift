import Foundation

/// On a shared (PostgreSQL) namespace this mount is one session among several: it registers
/// itself, renews a heartbeat from the background pass, and runs crash recovery at start only
/// when no other mount is alive. Recovery acts on the whole journal (pending uploads, streams,
/// names created but never closed), which belongs to whichever mount wrote it; while another
/// mount runs, those rows may be its work in progress, so they are left alone — nothing is
/// lost, at worst a dead mount's leftovers wait for a start with no other mount alive.
/// A restart of the same mount (the same state directory) replaces its own old session.
extension FDFSFileSystem {
    /// A session whose heartbeat is older than this is dead.
    static let sessionLifetime: Int64 = 30

    /// This mount's session ID, kept in the state directory so a restart recognizes its own.
    public var sessionID: String {
        let path = stateDir + "/session-id"
        if let saved = try? String(contentsOfFile: path, encoding: .utf8), !saved.isEmpty { return saved }
        let id = UUID().uuidString
        try? id.write(toFile: path, atomically: true, encoding: .utf8)
        return id
    }

    static var unixNow: Int64 { Int64(Date().timeIntervalSince1970) }

    /// Registers the session and tells whether crash recovery may run: always on SQLite (one
    /// mount per store), on PostgreSQL only when no other session is alive.
    func beginSessionAndMayRecover() -> Bool {
        guard store.engine == .postgres else { return true }
        let id = sessionID
        do {
            try store.beginSession(id, host: ProcessInfo.processInfo.hostName, pid: Int(getpid()), now: Self.unixNow)
            let others = try store.otherLiveSessions(id, since: Self.unixNow - Self.sessionLifetime)
            guard others.isEmpty else {
                let names = others.map { "\($0.host) pid \($0.pid)" }.joined(separator: ", ")
                logger.warning("recovery deferred: \(others.count) other mount(s) of this namespace are alive (\(names)); the journals may be their work in progress")
                return false
            }
            return true
        } catch {
            logger.error("cannot register this mount's session (\(error)); recovery deferred")
            return false
        }
    }

    /// Renews the heartbeat (from the background pass).
    func renewSession() {
        guard store.engine == .postgres else { return }
        do { try store.heartbeat(sessionID, now: Self.unixNow) } catch { logger.warning("session heartbeat failed: \(error)") }
    }

    /// Ends the session (a clean stop).
    func endSession() {
        guard store.engine == .postgres else { return }
        try? store.endSession(sessionID)
    }
}
