import FDFSProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The one error type of the storage server: the status byte a client will see and a message
/// for the log. Every failure is turned into one of these in ``StorageError/from(_:)``, the
/// single place where errors meet status bytes.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public var status: FDFSStatus
    public var message: String

    public init(_ status: FDFSStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.name): \(message)" }

    static func invalid(_ message: String) -> StorageError { StorageError(.EINVAL, message) }
    static func notFound(_ message: String) -> StorageError { StorageError(.ENOENT, message) }

    /// An error from a failed system call, with the current `errno`.
    static func system(_ what: String, errno code: Int32 = errno) -> StorageError {
        StorageError(status(forErrno: code), "\(what): \(String(cString: strerror(code)))")
    }

    /// Maps a local errno to the Linux number sent on the wire. On Linux they are the same;
    /// unknown or out-of-range values become EIO.
    static func status(forErrno code: Int32) -> FDFSStatus {
        switch code {
        case ENOENT: .ENOENT
        case EEXIST: .EEXIST
        case ENOSPC, EDQUOT: .ENOSPC
        case EACCES: .EACCES
        case EPERM: .EPERM
        case EISDIR: .EISDIR
        case EINVAL: .EINVAL
        case ENOMEM: .ENOMEM
        case EBUSY: .EBUSY
        case EAGAIN: .EAGAIN
        case ENAMETOOLONG: .ENAMETOOLONG
        case ENOTDIR: .ENOENT
        default: .EIO
        }
    }

    /// The status byte and message for any error thrown while serving a request.
    public static func from(_ error: any Error) -> StorageError {
        switch error {
        case let error as StorageError: error
        case let error as FDFSProtocolError: StorageError(.EINVAL, error.description)
        default: StorageError(.EIO, "\(error)")
        }
    }
}
