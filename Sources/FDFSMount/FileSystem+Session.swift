import Foundation

/// On a shared (PostgreSQL) namespace this mount is one session among several: it registers
/// itself, renews a heartbeat, and owns the journal rows it writes (schema version 4). At
/// start it recovers its own rows (those of its previous run: the session ID is kept in the
/// state directory) and finishes takeovers its previous run left; rows no registered session
/// owns (SQLite's, those written before version 4, those of a mount that ended with work
/// left) are recovered only when no other mount is alive. Rows of other mounts are never touched while they heartbeat; once one stops for
/// `session_timeout=` a live mount takes them over (FileSystem+Takeover.swift).
extension FDFSFileSystem {
    /// This mount's session ID on PostgreSQL, kept in the state directory so a restart
    /// recognizes its own rows.
    static func loadSessionID(stateDir: String) -> String {
        let path = stateDir + "/session-id"
        if let saved = try? String(contentsOfFile: path, encoding: .utf8), !saved.isEmpty { return saved }
        let id = UUID().uuidString
        try? id.write(toFile: path, atomically: true, encoding: .utf8)
        return id
    }

    /// This mount's session ID (`""` on SQLite: one implicit session).
    public var sessionID: String { store.session }

    /// A session whose heartbeat is older than this (seconds) is dead.
    var sessionLifetime: Int64 { max(2, Int64(options.sessionTimeout.rounded(.up))) }

    /// How often the heartbeat is renewed: three times per lifetime, at most every 2 s.
    var heartbeatInterval: Duration { .milliseconds(min(2000, sessionLifetime * 1000 / 3)) }

    static var unixNow: Int64 { Int64(Date().timeIntervalSince1970) }

    /// Registers the session; tells whether rows that no session owns may be recovered
    /// (always on SQLite; on PostgreSQL when no other session is alive).
    func beginSession() -> Bool {
        guard store.engine == .postgres else { return true }
        let id = sessionID
        do {
            try store.beginSession(id, host: ProcessInfo.processInfo.hostName, pid: Int(getpid()), now: Self.unixNow)
            let others = try store.otherLiveSessions(id, since: Self.unixNow - sessionLifetime)
            guard others.isEmpty else {
                let names = others.map { "\($0.host) pid \($0.pid)" }.joined(separator: ", ")
                logger.info("\(others.count) other mount(s) of this namespace are alive (\(names)); recovering this mount's own journal only")
                return false
            }
            return true
        } catch {
            logger.error("cannot register this mount's session (\(error)); recovering its own journal only")
            return false
        }
    }

    /// Recovery at start: this mount's own rows (resumed from its spool), rows no session owns
    /// when alone, takeovers the previous run did not finish, dead sessions; then stray spool
    /// files go.
    func recoverAtStart() async {
        let alone = beginSession()
        if store.engine == .postgres { try? store.adoptUnownedMetadata() }
        await recover(.own(sessionID, untagged: alone))
        if store.engine == .postgres {
            await recover(.takenOver(by: sessionID))
            _ = await takeOverDeadSessions()
        }
        removeStraySpoolFiles()
    }

    /// Renews the heartbeat. A session found gone was taken over by another mount after this
    /// one missed its heartbeats (a stall longer than `session_timeout=`): it registers again,
    /// and says so, since the journal rows it had were finished by that mount.
    func renewSession() {
        guard store.engine == .postgres else { return }
        do {
            if try store.heartbeat(sessionID, now: Self.unixNow) { return }
            logger.error("this mount's session was taken over by another mount (no heartbeat for \(sessionLifetime) s): uploads in flight may have been dropped; registering again")
            try store.beginSession(sessionID, host: ProcessInfo.processInfo.hostName, pid: Int(getpid()), now: Self.unixNow)
        } catch {
            logger.warning("session heartbeat failed: \(error)")
        }
    }

    /// Stops background work and the heartbeat but leaves the session registered, as a killed
    /// process would (for tests of takeover).
    public func haltKeepingSession() {
        backgroundWork.stop()
    }

    /// Ends the session (a clean stop).
    func endSession() {
        guard store.engine == .postgres else { return }
        try? store.endSession(sessionID)
    }
}
