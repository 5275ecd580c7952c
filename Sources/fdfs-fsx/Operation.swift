/// The kinds of operation the exerciser draws, by the names `--only` and `--without` take.
enum OperationKind: String, CaseIterable, Sendable {
    case read, write, seqwrite, truncate, ftruncate, append, mapread, mapwrite, fsync, reopen, otrunc

    /// How often each kind is drawn, relative to the others.
    var weight: Int64 {
        switch self {
        case .read: 14
        case .write: 20
        case .seqwrite: 4
        case .truncate: 5
        case .ftruncate: 5
        case .append: 6
        case .mapread: 8
        case .mapwrite: 8
        case .fsync: 4
        case .reopen: 6
        case .otrunc: 2
        }
    }

    /// Parses a comma-separated list of names.
    static func list(_ text: String) throws(FSXError) -> Set<OperationKind> {
        var kinds = Set<OperationKind>()
        for name in text.split(separator: ",") {
            guard let kind = OperationKind(rawValue: String(name.filter { $0 != " " })) else {
                throw FSXError.usage("unknown operation '\(name)' (known: \(allCases.map(\.rawValue).joined(separator: ",")))")
            }
            kinds.insert(kind)
        }
        return kinds
    }
}

/// One step of a run, with everything needed to perform it on either file.
enum Operation: Sendable, CustomStringConvertible {
    /// `pread` of `length` bytes at `offset` through the main descriptor.
    case read(offset: Int64, length: Int)
    /// `pwrite` at `offset` (past the end of the file leaves a hole).
    case write(offset: Int64, length: Int)
    /// `chunks` writes of `chunk` bytes, each at the end of the file (in order, as `cp` writes:
    /// after `otrunc` this is what the mount streams to the cluster while it is written).
    case sequentialWrite(chunks: Int, chunk: Int)
    /// `truncate(2)` of the path.
    case truncate(size: Int64)
    /// `ftruncate(2)` of the main descriptor.
    case ftruncate(size: Int64)
    /// A second descriptor opened `O_WRONLY|O_APPEND`, one write, and its close.
    case append(length: Int)
    /// A read-only mapping (shared or private) of the main descriptor, read and unmapped.
    case mapRead(offset: Int64, length: Int, shared: Bool)
    /// A shared writable mapping (the file extended with `ftruncate` first when the range ends
    /// past it), written, optionally `msync`ed, unmapped.
    case mapWrite(offset: Int64, length: Int, sync: Bool)
    /// `fsync(2)` of the main descriptor.
    case fsync
    /// Close the main descriptor (the mount uploads), read the whole file through a fresh
    /// read-only descriptor (the committed version), then open it `O_RDWR` again.
    case reopen
    /// Close the main descriptor and open it again with `O_TRUNC`.
    case reopenTruncating

    var kind: OperationKind {
        switch self {
        case .read: .read
        case .write: .write
        case .sequentialWrite: .seqwrite
        case .truncate: .truncate
        case .ftruncate: .ftruncate
        case .append: .append
        case .mapRead: .mapread
        case .mapWrite: .mapwrite
        case .fsync: .fsync
        case .reopen: .reopen
        case .reopenTruncating: .otrunc
        }
    }

    /// The bytes the operation may have changed, given the size before it (for diagnosing a
    /// mismatch: which step last wrote an offset).
    func touched(sizeBefore size: Int64) -> Range<Int64>? {
        switch self {
        case let .write(offset, length): offset..<offset + Int64(length)
        case let .sequentialWrite(chunks, chunk): size..<size + Int64(chunks * chunk)
        case let .truncate(to), let .ftruncate(to): min(size, to)..<max(size, to)
        case let .append(length): size..<size + Int64(length)
        case let .mapWrite(offset, length, _): min(size, offset)..<offset + Int64(length)
        case .reopenTruncating: 0..<size
        case .read, .mapRead, .fsync, .reopen: nil
        }
    }

    var description: String {
        switch self {
        case let .read(offset, length): "read      \(hex(offset)) +\(hex(length))"
        case let .write(offset, length): "write     \(hex(offset)) +\(hex(length))"
        case let .sequentialWrite(chunks, chunk): "seqwrite  \(chunks) x \(hex(chunk)) at EOF"
        case let .truncate(size): "truncate  to \(hex(size))"
        case let .ftruncate(size): "ftruncate to \(hex(size))"
        case let .append(length): "append    +\(hex(length)) (O_WRONLY|O_APPEND, closed)"
        case let .mapRead(offset, length, shared): "mapread   \(hex(offset)) +\(hex(length)) \(shared ? "MAP_SHARED" : "MAP_PRIVATE")"
        case let .mapWrite(offset, length, sync): "mapwrite  \(hex(offset)) +\(hex(length)) MAP_SHARED\(sync ? " msync" : "")"
        case .fsync: "fsync"
        case .reopen: "reopen    (close, read back O_RDONLY, open O_RDWR)"
        case .reopenTruncating: "otrunc    (close, open O_RDWR|O_TRUNC)"
        }
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
