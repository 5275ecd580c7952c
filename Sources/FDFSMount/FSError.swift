import FDFSClient

#if canImport(Glibc)
import Glibc
#endif

/// The one error type of the mount core. Every failure is one of these codes; ``errno`` is
/// the single place where codes become the errno the kernel (and so the application) sees.
public struct FSError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notFound            // ENOENT
        case exists              // EEXIST
        case notDirectory        // ENOTDIR
        case isDirectory         // EISDIR
        case notEmpty            // ENOTEMPTY
        case notPermitted        // EPERM: generated names, synthetic directories, links to directories
        case accessDenied        // EACCES
        case readOnly            // EROFS: mounted ro
        case noSpace             // ENOSPC: spool full, cluster full
        case fileTooLarge        // EFBIG: a size the spool can never hold
        case nameTooLong         // ENAMETOOLONG
        case invalid             // EINVAL
        case crossDevice         // EXDEV: rename or link between groups
        case noData              // ENODATA: no such xattr
        case rangeTooSmall       // ERANGE: xattr buffer
        case notSupported        // ENOTSUP
        case badHandle           // EBADF
        case io                  // EIO: cluster failures, CRC mismatch, local I/O
        case unreachable         // EIO as well, but from a transport failure (logged separately)
        case metadataUnreachable // EIO: the metadata engine (PostgreSQL) does not answer (logged once by the engine)
        case timeout             // ETIMEDOUT
        case busy                // EBUSY
        case conflict            // EAGAIN: another mount changed what an operation had checked (the core retries)
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String = "") {
        self.code = code
        self.message = message
    }

    /// The errno reported to the kernel.
    public var errno: Int32 {
        switch code {
        case .notFound: ENOENT
        case .exists: EEXIST
        case .notDirectory: ENOTDIR
        case .isDirectory: EISDIR
        case .notEmpty: ENOTEMPTY
        case .notPermitted: EPERM
        case .accessDenied: EACCES
        case .readOnly: EROFS
        case .noSpace: ENOSPC
        case .fileTooLarge: EFBIG
        case .nameTooLong: ENAMETOOLONG
        case .invalid: EINVAL
        case .crossDevice: EXDEV
        case .noData: ENODATA
        case .rangeTooSmall: ERANGE
        case .notSupported: EOPNOTSUPP
        case .badHandle: EBADF
        case .io, .unreachable, .metadataUnreachable: EIO
        case .timeout: ETIMEDOUT
        case .busy: EBUSY
        case .conflict: EAGAIN
        }
    }

    public var description: String { message.isEmpty ? code.rawValue : "\(code.rawValue): \(message)" }

    /// Maps a client error: ENOENT stays ENOENT, ENOSPC stays ENOSPC, everything else is EIO.
    init(_ error: FDFSClientError, _ context: String) {
        if error.code == .serverStatus, error.status?.rawValue == UInt8(ENOENT) {
            self.init(.notFound, "\(context): \(error)")
        } else if error.code == .serverStatus, error.status?.rawValue == UInt8(ENOSPC) {
            self.init(.noSpace, "\(context): \(error)")
        } else if error.isTransport {
            self.init(.unreachable, "\(context): \(error)")
        } else {
            self.init(.io, "\(context): \(error)")
        }
    }

    /// The current C errno as an I/O error.
    static func posix(_ what: String) -> FSError {
        let code = Glibc.errno
        let text = String(cString: strerror(code))
        if code == ENOSPC || code == EDQUOT { return FSError(.noSpace, "\(what): \(text)") }
        return FSError(.io, "\(what): \(text)")
    }
}
