import FDFSProtocol

/// Reports to one tracker (reference §5). Placeholder until the tracker codecs land.
final class TrackerReporter: Sendable {
    let context: StorageContext
    let tracker: ServerAddress
    let sync: SyncManager

    init(context: StorageContext, tracker: ServerAddress, sync: SyncManager) {
        self.context = context
        self.tracker = tracker
        self.sync = sync
    }

    func run() async {}
}
