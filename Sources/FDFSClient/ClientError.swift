import FDFSProtocol

/// The one error type of the client: what failed, where, and why.
///
/// A server's status byte becomes ``Code/serverStatus`` with the errno name in ``status``;
/// transport problems have their own codes. ``errno`` maps every case to one POSIX value for
/// callers (the mount, the CLI) that need one.
public struct FDFSClientError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The server answered with a non-zero status.
        case serverStatus
        /// No connection could be made.
        case connectFailed
        /// No answer within `network_timeout`, or no connection within `connect_timeout`.
        case timeout
        /// The peer closed the connection before the answer was complete.
        case connectionClosed
        /// The peer sent something that breaks the protocol.
        case protocolViolation
        /// The caller passed something the protocol cannot carry.
        case invalidArgument
        /// A local file could not be read or written.
        case localIO
        /// No tracker or storage is configured or reachable.
        case noServer
    }

    public var code: Code
    /// The server's status for ``Code/serverStatus``.
    public var status: FDFSStatus?
    /// The operation, such as `upload` or `QUERY_FETCH_ONE`.
    public var operation: String
    /// `host:port` of the server involved, when known.
    public var endpoint: String?
    public var message: String

    public init(_ code: Code, status: FDFSStatus? = nil, operation: String, endpoint: String? = nil, message: String = "") {
        self.code = code
        self.status = status
        self.operation = operation
        self.endpoint = endpoint
        self.message = message
    }

    /// The error as a Linux errno value.
    public var errno: Int32 {
        switch code {
        case .serverStatus: Int32(status?.rawValue ?? 5)
        case .timeout: 110
        case .invalidArgument: 22
        case .noServer, .connectFailed: 107 // ENOTCONN
        case .connectionClosed, .protocolViolation, .localIO: 5
        }
    }

    /// True when retrying on another server may help (the request never reached a verdict).
    public var isTransport: Bool {
        switch code {
        case .connectFailed, .timeout, .connectionClosed, .protocolViolation, .noServer: true
        case .serverStatus, .invalidArgument, .localIO: false
        }
    }

    public var description: String {
        var text = operation
        if let endpoint { text += " on \(endpoint)" }
        switch code {
        case .serverStatus: text += " failed: \(status?.name ?? "?")"
        default: text += " failed: \(code.rawValue)"
        }
        if !message.isEmpty { text += " (\(message))" }
        return text
    }
}

extension FDFSClientError {
    /// Whether the connection that gave this error may serve another request: a server
    /// status leaves it in a clean state, except EINVAL, after which a storage closes it
    /// (reference §1.1); any other error leaves it in an unknown state.
    var leavesConnectionReusable: Bool { code == .serverStatus && status != .EINVAL }
}
