import FDFSProtocol
import Foundation
#if canImport(Glibc)
import Glibc
import Synchronization
#endif

/// One line of a binlog (reference §6.1): `<timestamp> <op> <filename>[ <args>]`.
public struct BinlogRecord: Hashable, Sendable, CustomStringConvertible {
    /// Operation letters. Upper case = done here as the source; lower case = applied replica.
    public enum Operation: UInt8, Sendable, Hashable {
        case create = 0x43, delete = 0x44, update = 0x55, append = 0x41, modify = 0x4D, truncate = 0x54, link = 0x4C, rename = 0x52
    }

    public var timestamp: Int
    public var operation: Operation
    /// True for records of operations that originated on this storage (upper case).
    public var isSource: Bool
    /// The remote filename (`Mxx/HH/HH/name`); for links the link name, for renames the new name.
    public var filename: String
    /// The extra fields: offset and length (A/M), old and new size (T), the target (L) or the
    /// old name (R).
    public var arguments: [String]

    public init(timestamp: Int, operation: Operation, isSource: Bool, filename: String, arguments: [String] = []) {
        self.timestamp = timestamp
        self.operation = operation
        self.isSource = isSource
        self.filename = filename
        self.arguments = arguments
    }

    /// The op letter as written.
    public var letter: Character {
        let upper = Character(UnicodeScalar(operation.rawValue))
        return isSource ? upper : Character(upper.lowercased())
    }

    /// The line, with its terminating newline.
    public var line: String {
        ([String(timestamp), String(letter), filename] + arguments).joined(separator: " ") + "\n"
    }

    public var description: String { String(line.dropLast()) }

    /// Parses one line (without its newline); nil for a malformed line.
    public init?(line: Substring) {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 3, let timestamp = Int(fields[0]), fields[1].utf8.count == 1 else { return nil }
        let byte = fields[1].utf8.first!
        let upper = byte >= 0x61 && byte <= 0x7A ? byte - 0x20 : byte
        guard let operation = Operation(rawValue: upper) else { return nil }
        self.timestamp = timestamp
        self.operation = operation
        self.isSource = byte == upper
        self.filename = String(fields[2])
        self.arguments = fields.dropFirst(3).map(String.init)
        switch operation {
        case .append, .modify, .truncate:
            guard arguments.count == 2, Int64(arguments[0]) != nil, Int64(arguments[1]) != nil else { return nil }
        case .link, .rename:
            guard arguments.count == 1 else { return nil }
        default:
            guard arguments.isEmpty else { return nil }
        }
    }

    /// The two integer arguments of A/M/T records.
    public var numbers: (Int64, Int64) {
        (Int64(arguments.first ?? "") ?? 0, Int64(arguments.dropFirst().first ?? "") ?? 0)
    }
}

/// Appends records to `<base_path>/data/sync/binlog.NNN`, starting a new file after
/// `maxFileSize` bytes and keeping `binlog_index.dat` current.
public final class BinlogWriter: Sendable {
    public static let defaultMaxFileSize: Int64 = 1 << 30
    public let directory: String
    let maxFileSize: Int64

    private struct State {
        var descriptor: CInt = -1
        var index = 0
        var size: Int64 = 0
    }
    private let state: Mutex<State>

    public init(directory: String, maxFileSize: Int64 = BinlogWriter.defaultMaxFileSize) throws(StorageError) {
        self.directory = directory
        self.maxFileSize = maxFileSize
        try StorePaths.makeDirectories(directory)
        var initial = State()
        initial.index = Self.readIndex(directory: directory)
        let path = Self.path(directory, initial.index)
        initial.descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard initial.descriptor >= 0 else { throw StorageError.system("open \(path)") }
        var info = stat()
        fstat(initial.descriptor, &info)
        initial.size = Int64(info.st_size)
        state = Mutex(initial)
        try Self.writeIndex(directory: directory, index: initial.index)
    }

    deinit { state.withLock { if $0.descriptor >= 0 { Glibc.close($0.descriptor) } } }

    public static func path(_ directory: String, _ index: Int) -> String {
        directory + "/binlog." + (index < 10 ? "00" : index < 100 ? "0" : "") + String(index)
    }

    /// `current_write` from `binlog_index.dat` (or the older `binlog.index`), 0 if absent.
    public static func readIndex(directory: String) -> Int {
        if let text = try? String(contentsOfFile: directory + "/binlog_index.dat", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "current_write",
                   let value = Int(parts[1].trimmingCharacters(in: .whitespaces)), value >= 0 {
                    return value
                }
            }
        }
        if let text = try? String(contentsOfFile: directory + "/binlog.index", encoding: .utf8),
           let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            return value
        }
        return 0
    }

    static func writeIndex(directory: String, index: Int) throws(StorageError) {
        let text = "current_write=\(index)\ncurrent_compress=0\n"
        do { try text.write(toFile: directory + "/binlog_index.dat", atomically: true, encoding: .utf8) } catch {
            throw StorageError(.EIO, "cannot write \(directory)/binlog_index.dat: \(error.localizedDescription)")
        }
    }

    /// Index of the file being written.
    public var currentIndex: Int { state.withLock { $0.index } }

    /// Appends one record (one `write` call, so readers never see half a line from us).
    public func append(_ record: BinlogRecord) throws(StorageError) {
        let bytes = Array(record.line.utf8)
        let result: StorageError? = state.withLock { state in
            if state.size > 0 && state.size + Int64(bytes.count) > maxFileSize {
                let next = state.index + 1
                let path = Self.path(directory, next)
                let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
                guard fd >= 0 else { return StorageError.system("open \(path)") }
                Glibc.close(state.descriptor)
                state.descriptor = fd
                state.index = next
                state.size = 0
                do throws(StorageError) { try Self.writeIndex(directory: directory, index: next) } catch { return error }
            }
            let written = bytes.withUnsafeBytes { Glibc.write(state.descriptor, $0.baseAddress, $0.count) }
            guard written == bytes.count else { return StorageError.system("write binlog") }
            state.size += Int64(written)
            return nil
        }
        if let result { throw result }
    }

    public func close() {
        state.withLock { state in
            if state.descriptor >= 0 { Glibc.close(state.descriptor); state.descriptor = -1 }
        }
    }
}

/// Reads binlog records from a position (file index and byte offset), following the writer
/// from one file to the next.
public struct BinlogReader: Sendable {
    public let directory: String
    public private(set) var index: Int
    public private(set) var offset: Int64

    public init(directory: String, index: Int, offset: Int64) {
        self.directory = directory
        self.index = index
        self.offset = offset
    }

    /// A record with the position just after it.
    public struct Entry: Sendable {
        public var record: BinlogRecord?
        public var nextIndex: Int
        public var nextOffset: Int64
    }

    /// Reads up to `limit` complete lines from the current position and advances past them.
    /// Malformed lines come back with a nil record (so positions still advance).
    public mutating func readBatch(limit: Int, writerIndex: Int) -> [Entry] {
        var out: [Entry] = []
        while out.count < limit {
            let path = BinlogWriter.path(directory, index)
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            var got = 0
            if fd >= 0 {
                got = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
                Glibc.close(fd)
            }
            let end = got > 0 ? chunk[0..<got].lastIndex(of: 0x0A) : nil
            guard let end else {
                // Nothing complete here: move to the next file if the writer has.
                if index < writerIndex && (got <= 0) {
                    index += 1
                    offset = 0
                    continue
                }
                if index < writerIndex && got > 0 && got < chunk.count {
                    // A torn last line in a finished file: skip it.
                    index += 1
                    offset = 0
                    continue
                }
                break
            }
            var start = 0
            while start <= end && out.count < limit {
                let newline = chunk[start...end].firstIndex(of: 0x0A)!
                let line = String(decoding: chunk[start..<newline], as: UTF8.self)
                offset += Int64(newline - start + 1)
                out.append(Entry(record: BinlogRecord(line: Substring(line)), nextIndex: index, nextOffset: offset))
                start = newline + 1
            }
        }
        return out
    }

    /// The records from the current position to the writer's end, without moving: how many
    /// (counting at most `limit`) and the timestamp of the first. Reads the files.
    public func pending(writerIndex: Int, limit: Int = 1_000_000) -> (records: Int, oldestTimestamp: Int?) {
        var copy = self
        var count = 0
        var oldest: Int?
        while count < limit {
            let batch = copy.readBatch(limit: min(4096, limit - count), writerIndex: writerIndex)
            if batch.isEmpty { break }
            if oldest == nil { oldest = batch.lazy.compactMap(\.record).first?.timestamp }
            count += batch.count
        }
        return (count, oldest)
    }

    /// Moves to a position.
    public mutating func seek(index: Int, offset: Int64) {
        self.index = index
        self.offset = offset
    }
}
