/// Starts and stops one sync task per group member. Placeholder.
final class SyncManager: Sendable {
    let context: StorageContext
    init(context: StorageContext) { self.context = context }
    func run() async {}
}
