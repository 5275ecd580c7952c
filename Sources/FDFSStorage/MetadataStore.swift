import FDFSProtocol
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The `<data file>-m` metadata files (reference §3.5): the wire encoding, sorted by name.
enum MetadataStore {
    /// Names longer than 64 bytes and values longer than 256 are cut, as the C storage does.
    static func truncated(_ metadata: FDFSMetadata) -> FDFSMetadata {
        let fits = metadata.allSatisfy {
            !$0.name.isEmpty && $0.name.utf8.count <= FDFSMetadata.maxNameLength && $0.value.utf8.count <= FDFSMetadata.maxValueLength
        }
        if fits { return metadata }
        var out = FDFSMetadata()
        for pair in metadata {
            let name = String(decoding: Array(pair.name.utf8.prefix(FDFSMetadata.maxNameLength)), as: UTF8.self)
            let value = String(decoding: Array(pair.value.utf8.prefix(FDFSMetadata.maxValueLength)), as: UTF8.self)
            try? out.set(name, value)
        }
        return out
    }

    /// Raw contents of a metadata file, nil if it does not exist.
    static func read(_ path: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return [UInt8](data)
    }

    /// The result of applying `operation` with `metadata` to the current set (nil = none):
    /// nil means "no metadata file".
    static func merged(_ operation: MetadataOperation, _ metadata: FDFSMetadata, current: FDFSMetadata?) -> FDFSMetadata? {
        switch operation {
        case .overwrite:
            return metadata.isEmpty ? nil : metadata.sorted
        case .merge:
            if metadata.isEmpty { return current }
            return (current ?? FDFSMetadata()).merging(metadata).sorted
        }
    }

    /// Applies SET_METADATA to the metadata file of `dataPath` and returns the binlog
    /// operation (create, update or delete) if the file changed. A result that would encode
    /// to more than `limit` bytes is refused with EINVAL and changes nothing. Blocking I/O.
    static func apply(_ operation: MetadataOperation, _ metadata: FDFSMetadata, dataPath: String, limit: Int) throws(StorageError) -> BinlogRecord.Operation? {
        let path = dataPath + "-m"
        if operation == .merge && metadata.isEmpty { return nil }
        let existing = read(path)
        let current = existing.map { FDFSMetadata.decode(ByteBuffer(bytes: $0)) }
        guard let result = merged(operation, metadata, current: current) else {
            guard existing != nil else { return nil }
            guard unlink(path) == 0 else { throw StorageError.system("delete \(path)") }
            return .delete
        }
        guard result.encodedSize <= limit else {
            throw StorageError.invalid("metadata of \(result.count) records would take \(result.encodedSize) bytes, over the limit of \(limit) bytes (buff_size)")
        }
        try writeAtomically(path, Array(result.encoded().readableBytesView))
        return existing == nil ? .create : .update
    }

    /// ``apply(_:_:dataPath:limit:)`` reporting the binlog operation to `logged`.
    static func apply(_ operation: MetadataOperation, _ metadata: FDFSMetadata, dataPath: String, limit: Int = .max, logged: (BinlogRecord.Operation) -> Void) throws(StorageError) {
        if let change = try apply(operation, metadata, dataPath: dataPath, limit: limit) { logged(change) }
    }

    /// Writes a small file through a temp file and a rename.
    static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(StorageError) {
        let temp = path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.system("create \(temp)") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(temp, path) == 0 else {
            let failure = StorageError.system("write \(path)")
            unlink(temp)
            throw failure
        }
    }
}
