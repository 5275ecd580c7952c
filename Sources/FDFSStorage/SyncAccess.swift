import FDFSProtocol

/// Who may replicate into this storage: the storage-to-storage commands (REPORT_SERVER_ID and
/// every SYNC_*) are obeyed only from the IP addresses of the storages a tracker lists as
/// members of our group (the union of each tracker's latest member list, from the beat
/// responses). Anyone else gets EACCES and the connection is closed. `allow_hosts` applies
/// before this, to every connection.
extension Session {
    /// The commands only a member of our group may send.
    static let memberOnlyCommands: Set<FDFSCommand> = syncCommands.union([.reportServerID])

    /// For a member-only command from an address that is not a member: answers EACCES, logs
    /// it and returns true (the caller then closes the connection). False otherwise.
    func refusedAsNonMember(_ command: FDFSCommand) async -> Bool {
        guard Self.memberOnlyCommands.contains(command), !context.isGroupMember(ip: peer) else { return false }
        logger.warning("\(command) refused: \(peer) is not a member of \(group) in any tracker's list")
        try? await respond(.EACCES)
        return true
    }
}
