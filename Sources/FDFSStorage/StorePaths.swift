import FDFSProtocol
import Foundation
#if canImport(Glibc)
import Glibc
import Synchronization
#endif

/// The store paths of this storage: `<store_pathN>/data/HH/HH/` directories, where a file ID
/// lives on disk, temp files, free space, and the choice of path and directory for new files
/// (reference §3.2, §4.5).
public final class StorePaths: Sendable {
    public let paths: [String]
    public let subdirCount: Int
    let distributeMode: Int
    let rotateCount: Int
    private let statFile: String

    private struct State {
        var high = 0
        var low = 0
        var writtenInDirectory = 0
        var nextPath = 0
        var tempSequence: UInt64 = 0
        /// Rotations so far: orders the writes of `storage_stat.dat`.
        var rotations = 0
    }
    private let state: Mutex<State>
    /// The rotation last written to `storage_stat.dat`: a rotation's file is written outside
    /// `state`'s lock (uploads go on meanwhile) but never over a later one's.
    private let written = Mutex(0)

    /// Opens the store paths, creating `data/HH/HH` at first start and removing temp files a
    /// killed process left behind. `dataDirectory` holds `storage_stat.dat`.
    public init(configuration: StorageConfiguration) throws(StorageError) {
        paths = configuration.storePaths
        subdirCount = configuration.subdirCountPerPath
        distributeMode = configuration.fileDistributePathMode
        rotateCount = configuration.fileDistributeRotateCount
        statFile = configuration.dataDirectory + "/storage_stat.dat"
        var initial = State()
        initial.tempSequence = UInt64(time(nil)) << 20
        try Self.makeDirectories(configuration.dataDirectory)
        for path in paths { try Self.prepare(storePath: path, subdirCount: subdirCount) }
        if let text = try? String(contentsOfFile: statFile, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, let value = Int(parts[1]) else { continue }
                switch parts[0] {
                case "dist_path_index_high": initial.high = value % subdirCount
                case "dist_path_index_low": initial.low = value % subdirCount
                case "dist_write_file_count": initial.writtenInDirectory = value
                default: break
                }
            }
        }
        state = Mutex(initial)
    }

    static func makeDirectories(_ path: String) throws(StorageError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StorageError(.EIO, "cannot create directory \(path): \(error.localizedDescription)")
        }
    }

    static func prepare(storePath: String, subdirCount: Int) throws(StorageError) {
        let data = storePath + "/data"
        try makeDirectories(data)
        let last = data + "/" + FileID.hex(UInt8(subdirCount - 1)) + "/" + FileID.hex(UInt8(subdirCount - 1))
        if !directoryExists(last) {
            for high in 0..<subdirCount {
                let top = data + "/" + FileID.hex(UInt8(high))
                if mkdir(top, 0o755) != 0 && errno != EEXIST { throw StorageError.system("mkdir \(top)") }
                for low in 0..<subdirCount {
                    let dir = top + "/" + FileID.hex(UInt8(low))
                    if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw StorageError.system("mkdir \(dir)") }
                }
            }
        }
        // Temp files of uploads and sync receives that never completed.
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: data) {
            for entry in entries where entry.hasSuffix(".tmp") { unlink(data + "/" + entry) }
        }
    }

    static func directoryExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// `<store_pathN>/data`.
    public func dataDirectory(_ index: Int) -> String { paths[index] + "/data" }

    /// The file a validated ID names. The caller has checked the group; this checks the store
    /// path index.
    public func localPath(_ id: FileID) throws(StorageError) -> String {
        guard id.storePathIndex < paths.count else {
            throw StorageError.invalid("store path index \(id.storePathIndex) of \(id) is not below store_path_count \(paths.count)")
        }
        return dataDirectory(id.storePathIndex) + "/" + id.dataRelativePath
    }

    /// A fresh temp file path in the data directory of a store path (removed at next start
    /// if the process dies before it is renamed into place).
    public func newTempPath(_ index: Int) -> String {
        let sequence = state.withLock { state -> UInt64 in
            state.tempSequence += 1
            return state.tempSequence
        }
        return dataDirectory(index) + "/\(sequence).tmp"
    }

    /// Picks HH/HH for a new file (reference §4.5). `name` is the temporary base64 name used by
    /// the random mode.
    public func chooseDirectory(name: String) -> (UInt8, UInt8) {
        if distributeMode == 1 {
            let n = Int(UInt32(bitPattern: Self.pjwHash(Array(name.utf8)))) % 65536
            return (UInt8(((n >> 8) & 0xFF) % subdirCount), UInt8((n & 0xFF) % subdirCount))
        }
        let (result, persist) = state.withLock { state -> ((UInt8, UInt8), (rotation: Int, text: String)?) in
            let chosen = (UInt8(state.high), UInt8(state.low))
            state.writtenInDirectory += 1
            guard state.writtenInDirectory >= rotateCount else { return (chosen, nil) }
            state.writtenInDirectory = 0
            state.low += 1
            if state.low >= subdirCount {
                state.low = 0
                state.high = (state.high + 1) % subdirCount
            }
            state.rotations += 1
            return (chosen, (state.rotations, "dist_path_index_high=\(state.high)\ndist_path_index_low=\(state.low)\ndist_write_file_count=0\n"))
        }
        if let persist {
            written.withLock { last in
                guard persist.rotation > last else { return }
                try? persist.text.write(toFile: statFile, atomically: true, encoding: .utf8)
                last = persist.rotation
            }
        }
        return result
    }

    /// The rotation state, for tests.
    public var rotation: (high: Int, low: Int, count: Int) {
        state.withLock { ($0.high, $0.low, $0.writtenInDirectory) }
    }

    /// PJW hash as libfastcommon computes it, on a signed 32-bit value with an arithmetic shift.
    public static func pjwHash(_ bytes: [UInt8]) -> Int32 {
        var h: Int32 = 0
        for byte in bytes {
            h = (h &<< 4) &+ Int32(byte)
            let t = h & Int32(bitPattern: 0xF000_0000)
            if t != 0 {
                h = (h ^ (t >> 24)) & 0x0FFF_FFFF
            }
        }
        return h
    }

    /// Total and free MB of a store path (statvfs).
    public func diskUsage(_ index: Int) -> (totalMB: Int64, freeMB: Int64) {
        var info = statvfs()
        guard statvfs(paths[index], &info) == 0 else { return (0, 0) }
        let unit = Int64(info.f_frsize)
        return (Int64(info.f_blocks) * unit / (1 << 20), Int64(info.f_bavail) * unit / (1 << 20))
    }

    /// Whether `size` more bytes fit in a store path above the reserved space.
    public func hasSpace(_ index: Int, size: Int64, reserved: ReservedSpace) -> Bool {
        let usage = diskUsage(index)
        let freeAfter = usage.freeMB - size / (1 << 20)
        switch reserved {
        case .none: return freeAfter > 0 || usage.totalMB == 0
        case let .megabytes(mb): return freeAfter > mb / Int64(max(paths.count, 1))
        case let .ratio(ratio):
            guard usage.totalMB > 0 else { return false }
            return Double(freeAfter) / Double(usage.totalMB) > ratio
        }
    }

    /// The store path for an upload: the requested one, or (for −1) the next path with room.
    public func choosePath(requested: Int8, size: Int64, reserved: ReservedSpace) throws(StorageError) -> Int {
        if requested >= 0 {
            guard Int(requested) < paths.count else {
                throw StorageError.invalid("store path index \(requested) is not below store_path_count \(paths.count)")
            }
            guard hasSpace(Int(requested), size: size, reserved: reserved) else {
                throw StorageError(.ENOSPC, "store path \(requested) has no room for \(size) bytes above the reserved space")
            }
            return Int(requested)
        }
        let start = state.withLock { state -> Int in
            let start = state.nextPath
            state.nextPath = (state.nextPath + 1) % paths.count
            return start
        }
        for step in 0..<paths.count {
            let index = (start + step) % paths.count
            if hasSpace(index, size: size, reserved: reserved) { return index }
        }
        throw StorageError(.ENOSPC, "no store path has room for \(size) bytes above the reserved space")
    }
}

/// The tracker's `reserved_storage_space` (PARAMETER_REQ).
public enum ReservedSpace: Sendable, Hashable {
    case none
    case megabytes(Int64)
    case ratio(Double)

    /// Parses `20%`, `1.00%`, `1024MB`, `10G`, or a byte count.
    public init?(parsing text: String) {
        let value = text.trimmingCharacters(in: .whitespaces)
        if value.hasSuffix("%") {
            guard let percent = Double(value.dropLast()), percent >= 0, percent < 100 else { return nil }
            self = .ratio(percent / 100)
        } else if let bytes = FDFSConfig.parseSize(value) {
            self = .megabytes(bytes / (1 << 20))
        } else {
            return nil
        }
    }
}
