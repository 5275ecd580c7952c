import FDFSProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Generated names for new files (reference §4.3, §4.4) and their placement on disk.
enum NameGenerator {
    /// Seven random decimal digits for the formatted extension.
    static func randomDigits() -> [UInt8] { (0..<7).map { _ in UInt8.random(in: 0...9) } }

    /// The 7-character formatted extension of `ext`.
    static func formattedExtension(_ ext: String) -> String {
        GeneratedName.formattedExtension(ext, digits: randomDigits())
    }

    /// A temporary 27-character name used to pick the directory in random mode.
    static func temporaryName(source: GeneratedName.Source, size: Int64) -> String {
        GeneratedName(source: source, timestamp: UInt32(truncatingIfNeeded: time(nil)), size: size,
                      crc32: UInt32.random(in: 0...UInt32.max), randomBits: UInt32.random(in: 0...UInt32.max)).encoded
    }

    /// Hard-links `temp` under a fresh generated name in `Mxx/HH/HH/` and removes `temp`.
    /// Each of up to 10 attempts draws new random bits; a name that exists is never replaced.
    static func place(
        temp: String, store: StorePaths, group: String, pathIndex: Int, directory: (UInt8, UInt8),
        source: GeneratedName.Source, timestamp: UInt32, size: Int64, crc32: UInt32, appender: Bool,
        formattedExtension: String
    ) throws(StorageError) -> FileID {
        for _ in 0..<10 {
            let record = GeneratedName(source: source, timestamp: timestamp, size: size, crc32: crc32,
                                       appender: appender, randomBits: UInt32.random(in: 0...UInt32.max))
            let remote = "M\(FileID.hex(UInt8(pathIndex)))/\(FileID.hex(directory.0))/\(FileID.hex(directory.1))/\(record.encoded)\(formattedExtension)"
            let id: FileID
            do { id = try FileID(group: group, remoteFilename: remote) } catch {
                throw StorageError(.EIO, "generated an invalid name \(remote): \(error)")
            }
            let path = try store.localPath(id)
            if link(temp, path) == 0 {
                unlink(temp)
                return id
            }
            let code = errno
            if code == EEXIST { continue }
            if code == ENOENT {
                // A directory outside this storage's subdir range (never for our own picks).
                let dir = String(path[..<path.lastIndex(of: "/")!])
                mkdir(String(dir[..<dir.lastIndex(of: "/")!]), 0o755)
                mkdir(dir, 0o755)
                if link(temp, path) == 0 { unlink(temp); return id }
            }
            throw StorageError.system("link \(temp) to \(path)", errno: code)
        }
        throw StorageError(.EBUSY, "no unique file name after 10 attempts")
    }
}
