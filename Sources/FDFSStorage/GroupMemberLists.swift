import FDFSProtocol

/// The member lists of our group as each tracker last sent them, merged into one.
///
/// Our trackers have no leader to keep them in step: each learns about a storage when that
/// storage joins it, so for a while one tracker may not list a member that another does, or may
/// still hold an older status for it (say OFFLINE, added by a source's REPORT_STATUS, while the
/// member beats ACTIVE to the tracker it can reach). The merged list names every storage any
/// tracker lists; when the trackers disagree about a status, the one that shows the storage
/// most alive wins (ACTIVE over ONLINE over the initial-sync states over OFFLINE, DELETED and
/// IP_CHANGED last). With one tracker the merged list is simply its latest list.
struct GroupMemberLists: Sendable {
    private var byTracker: [String: [GroupMember]] = [:]

    /// Records the list `tracker` sent and returns the merged list, sorted by id.
    mutating func update(_ members: [GroupMember], from tracker: String) -> [GroupMember] {
        byTracker[tracker] = members
        var merged: [String: GroupMember] = [:]
        for list in byTracker.values {
            for member in list {
                let key = "\(member.ip):\(member.port)"
                if let known = merged[key], Self.liveness(known.status) >= Self.liveness(member.status) { continue }
                merged[key] = member
            }
        }
        return merged.values.sorted { ($0.id, $0.ip, $0.port) < ($1.id, $1.ip, $1.port) }
    }

    /// How alive a status shows a storage to be; higher wins when trackers disagree.
    static func liveness(_ status: UInt8) -> Int {
        switch StorageStatus(rawValue: status) {
        case .active: 9
        case .online: 8
        case .recovery: 7
        case .syncing: 6
        case .waitSync: 5
        case .offline: 4
        case .initial: 3
        case .ipChanged: 2
        case .deleted: 1
        default: 0
        }
    }
}
