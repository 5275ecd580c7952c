import FDFSClient

#if canImport(Glibc)
import Glibc
#endif

extension SplicedBody {
    /// The delivered bytes, taken out of the pipe (as the kernel would splice them) or copied
    /// from memory; and whether they came from a pipe.
    public func take() -> (bytes: [UInt8], fromPipe: Bool) {
        switch self {
        case let .pipe(fd, count):
            var bytes = [UInt8](repeating: 0, count: count)
            var got = 0
            while got < count {
                let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, count - got) }
                guard n > 0 else { break }
                got += n
            }
            return (Array(bytes.prefix(got)), true)
        case let .memory(memory):
            return (Array(memory), false)
        }
    }
}
