import FDFSClient
import FDFSProtocol
import Logging

/// LOOKUP, GETATTR and READLINK: rows of the mapping store answer at once; a name in a
/// synthetic directory asks the tracker's layout, a generated name not seen before asks the
/// cluster (unless it was found missing lately, see ``NegativeCache``).
extension FDFSFileSystem {
    /// Checks a name from the kernel: valid UTF-8, no NUL or '/', at most 255 bytes.
    public static func validName(_ bytes: [UInt8]) throws(FSError) -> String {
        guard bytes.count <= 255 else { throw FSError(.nameTooLong) }
        guard !bytes.isEmpty, !bytes.contains(0), !bytes.contains(UInt8(ascii: "/")),
              let name = String(validating: bytes, as: UTF8.self) else {
            throw FSError(.notFound, "invalid name")
        }
        return name
    }

    /// `cached`: LOOKUP and GETATTR may be answered from the store's cache (PostgreSQL; at most
    /// `attr_timeout=` old, as the kernel's own copy would be).
    func entry(_ ino: UInt64, cached: Bool = false) throws(FSError) -> Entry {
        guard let entry = try store.entry(ino, cached: cached) else { throw FSError(.notFound, "inode \(ino)") }
        return entry
    }

    /// LOOKUP: `.done` for a known row or a miss in a user directory; the cluster is asked
    /// about a name in a synthetic directory.
    public func lookup(parent: UInt64, name: String) throws(FSError) -> Answer<EntryReply> {
        guard name.utf8.count <= 255 else { throw FSError(.nameTooLong) }
        let dir = try entry(parent, cached: true)
        guard dir.kind.isDirectory else { throw FSError(.notDirectory) }
        if let child = try store.child(parent, name, cached: true) { return .done(reply(child)) }
        if dir.kind.isSynthetic && dir.kind != .subdirLow {
            return .needsCluster { () async throws(FSError) in
                guard let (kind, path) = await self.syntheticChild(dir, name) else { throw FSError(.notFound) }
                return self.reply(try self.store.insert(self.syntheticEntry(parent: parent, name: name, kind: kind, path: path), orExisting: true))
            }
        }
        if dir.kind == .subdirLow {
            return .needsCluster { () async throws(FSError) in self.reply(try await self.lookupGenerated(dir, name)) }
        }
        throw FSError(.notFound)
    }

    /// A generated name not seen before: validate it, then ask the cluster.
    func lookupGenerated(_ dir: Entry, _ name: String) async throws(FSError) -> Entry {
        let path = dir.fileID ?? ""
        guard let slash = path.firstIndex(of: "/") else { throw FSError(.notFound) }
        let group = String(path[..<slash])
        let remote = String(path[path.index(after: slash)...]) + "/" + name
        guard let id = try? FileID(group: group, remoteFilename: remote) else { throw FSError(.notFound, "not a file ID") }
        let key = id.description
        if negative.isMissing(key) { throw FSError(.notFound, "recently missing") }
        metrics.add(metrics.lookupsRemote)
        var size = id.generated.size
        var time = Int64(id.generated.timestamp)
        do {
            let info = try await cluster.fileInfo(id)
            if id.kind != .normal {
                size = info.size
                time = info.createTimestamp
            }
        } catch {
            if error.code == .notFound {
                negative.noteMissing(key)
                throw error
            }
            guard id.kind == .normal else { throw error }
            logger.warning("lookup of \(id): cluster unreachable (\(error)); trusting the name")
        }
        return try store.insert(generatedEntry(parent: dir.ino, id: id, size: size, time: time), orExisting: true)
    }

    /// GETATTR (always answered from the mapping store and the spool).
    public func getattr(_ ino: UInt64) throws(FSError) -> EntryReply {
        reply(try entry(ino, cached: true))
    }

    public func readlink(_ ino: UInt64) throws(FSError) -> String {
        let entry = try entry(ino)
        guard entry.kind == .symlink, let target = entry.target else { throw FSError(.invalid) }
        return target
    }
}
