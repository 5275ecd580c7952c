/// The built-in HTTP download server. Placeholder.
final class HTTPServer: Sendable {
    let context: StorageContext
    init(context: StorageContext) { self.context = context }
    func start() async throws {}
    func stop() {}
}
