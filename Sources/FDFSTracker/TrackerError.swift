import FDFSProtocol

/// The one error type of the tracker: a code and a message for the log.
///
/// Every failure a request can meet ends up here; ``status`` is the single place where codes
/// become the Linux errno numbers that go into the reply's status byte.
public struct TrackerError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// Malformed body, wrong length, bad field value (EINVAL).
        case invalid
        /// No such group or storage, no usable storage (ENOENT).
        case notFound
        /// The storage or group is in use (EBUSY).
        case busy
        /// The storage is already deleted (EALREADY).
        case alreadyDone
        /// No group or path has space above the reserve (ENOSPC).
        case noSpace
        /// A storage-only command on a connection that has not joined (EACCES).
        case notJoined
        /// A storage joined with a status that a new member may not have (EFAULT).
        case badStatus
        /// A feature this tracker does not offer (EOPNOTSUPP).
        case notSupported
        /// The reply would exceed the network buffer (ENOSPC, as the C tracker answers).
        case tooLarge
        /// The answer is not known here yet; the caller should ask again or ask another
        /// tracker (EAGAIN).
        case notYet
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The status byte a reply carries for this error.
    public var status: FDFSStatus {
        switch code {
        case .invalid: .EINVAL
        case .notFound: .ENOENT
        case .busy: .EBUSY
        case .alreadyDone: .EALREADY
        case .noSpace, .tooLarge: .ENOSPC
        case .notJoined: .EACCES
        case .badStatus: FDFSStatus(rawValue: 14)  // EFAULT
        case .notSupported: .EOPNOTSUPP
        case .notYet: .EAGAIN
        }
    }

    /// A decoding failure of a request body becomes EINVAL.
    public init(_ error: FDFSProtocolError) {
        self.init(.invalid, error.description)
    }

    public var description: String { "\(status.name): \(message)" }
}
