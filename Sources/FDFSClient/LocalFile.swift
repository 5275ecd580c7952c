#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A local file opened for an upload or a download, closed by its owner.
struct LocalFile: Sendable {
    let descriptor: CInt
    let size: Int64
    let path: String

    /// Opens an existing regular file for reading.
    init(openForReading path: String, operation: String) throws(FDFSClientError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error(operation, "cannot open \(path)") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = Self.error(operation, "cannot stat \(path)")
            Glibc.close(fd)
            throw error
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(fd)
            throw FDFSClientError(.localIO, operation: operation, message: "\(path) is not a regular file")
        }
        self.descriptor = fd
        self.size = Int64(info.st_size)
        self.path = path
    }

    /// Creates (or truncates) a file for writing.
    init(createForWriting path: String, operation: String) throws(FDFSClientError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.error(operation, "cannot create \(path)") }
        self.descriptor = fd
        self.size = 0
        self.path = path
    }

    /// Writes a whole buffer at the current position.
    func write(_ bytes: UnsafeRawBufferPointer, operation: String) throws(FDFSClientError) {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw Self.error(operation, "cannot write \(path)")
            }
            offset += written
        }
    }

    func close() {
        Glibc.close(descriptor)
    }

    static func error(_ operation: String, _ message: String) -> FDFSClientError {
        FDFSClientError(.localIO, operation: operation, message: "\(message): \(String(cString: strerror(errno)))")
    }

    /// The extension of a path's last component (text after the last dot), if it is 1 to 6
    /// characters of `[A-Za-z0-9_-]`; otherwise "".
    static func extensionOf(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        let ext = name[name.index(after: dot)...]
        guard (1...6).contains(ext.count), ext.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else { return "" }
        return String(ext)
    }
}
