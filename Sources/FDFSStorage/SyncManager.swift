import FDFSProtocol
import Synchronization

/// Keeps one ``SyncTask`` per other member of the group, as the tracker's member lists name
/// them: new members get a task, members that disappear or are deleted lose theirs.
final class SyncManager: Sendable {
    let context: StorageContext
    private let tasks = Mutex([String: Task<Void, Never>]())

    init(context: StorageContext) { self.context = context }

    func run() async {
        while !Task.isCancelled {
            let members = context.members
            let myIP = context.myIP
            let port = context.configuration.port
            let peers = members.filter { !($0.ip == myIP && $0.port == port) && $0.status != StorageStatus.deleted.rawValue && $0.status != StorageStatus.ipChanged.rawValue }
            let wanted = Set(peers.map(Self.key))
            tasks.withLock { tasks in
                for (key, task) in tasks where !wanted.contains(key) {
                    task.cancel()
                    tasks.removeValue(forKey: key)
                }
                for peer in peers where tasks[Self.key(peer)] == nil {
                    let task = SyncTask(context: context, peer: peer)
                    tasks[Self.key(peer)] = Task { await task.run() }
                    context.logger.info("sync task to \(peer.ip):\(peer.port) started")
                }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        let running = tasks.withLock { tasks -> [Task<Void, Never>] in
            defer { tasks.removeAll() }
            return Array(tasks.values)
        }
        for task in running { task.cancel() }
        for task in running { await task.value }
    }

    static func key(_ member: GroupMember) -> String { "\(member.ip):\(member.port)" }
}
