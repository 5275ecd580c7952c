import FDFSClient
import FDFSProtocol

/// Extended attributes: `user.fdfs.*` describe the cluster file behind a name (and the state
/// directory and metrics on the root); `user.fdfs.meta.*` are the file's FastDFS metadata.
extension FDFSFileSystem {
    // MARK: xattrs

    static let xattrNames = ["user.fdfs.file_id", "user.fdfs.crc32", "user.fdfs.source_ip", "user.fdfs.created"]

    public func listxattr(_ ino: UInt64) async throws(FSError) -> [String] {
        let entry = try entry(ino)
        if entry.kind == .root { return ["user.fdfs.state_dir", "user.fdfs.metrics"] }
        guard let text = entry.fileID, entry.kind == .file || entry.kind == .generated, let id = try? FileID(text) else { return [] }
        var names = Self.xattrNames
        if let meta = try? await cluster.getMetadata(id) {
            names += meta.map { "user.fdfs.meta.\($0.name)" }
        }
        return names
    }

    public func getxattr(_ ino: UInt64, name: String) async throws(FSError) -> [UInt8] {
        guard name.hasPrefix("user.fdfs.") else { throw FSError(.noData) }
        let entry = try entry(ino)
        if entry.kind == .root, name == "user.fdfs.state_dir" { return Array(stateDir.utf8) }
        if entry.kind == .root, name == "user.fdfs.metrics" { return Array(renderMetrics().utf8) }
        guard let text = entry.fileID, entry.kind == .file || entry.kind == .generated, let id = try? FileID(text) else {
            throw FSError(.noData)
        }
        switch name {
        case "user.fdfs.file_id": return Array(id.description.utf8)
        case "user.fdfs.crc32":
            let hex = String(id.generated.crc32, radix: 16)
            return Array((String(repeating: "0", count: 8 - hex.count) + hex).utf8)
        case "user.fdfs.source_ip": return Array(id.generated.source.description.utf8)
        case "user.fdfs.created": return Array(String(id.generated.timestamp).utf8)
        default:
            let prefix = "user.fdfs.meta."
            guard name.hasPrefix(prefix) else { throw FSError(.noData) }
            let key = String(name.dropFirst(prefix.count))
            guard let value = try await cluster.getMetadata(id)[key] else { throw FSError(.noData) }
            return Array(value.utf8)
        }
    }

    public func setxattr(_ ino: UInt64, name: String, value: [UInt8]) async throws(FSError) {
        let prefix = "user.fdfs.meta."
        guard name.hasPrefix(prefix) else { throw FSError(.notSupported) }
        if options.readOnly { throw FSError(.readOnly) }
        let entry = try entry(ino)
        guard entry.kind == .file, let text = entry.fileID, let id = try? FileID(text) else { throw FSError(.notSupported) }
        guard let string = String(validating: value, as: UTF8.self) else { throw FSError(.invalid) }
        var metadata = FDFSMetadata()
        do { try metadata.set(String(name.dropFirst(prefix.count)), string) } catch { throw FSError(.invalid, error.description) }
        try await cluster.setMetadata(id, metadata, merge: true)
    }
}
