/// The one error type of the protocol module: a code and a message naming what was wrong.
public struct FDFSProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem was found.
    public enum Code: String, Sendable, Hashable {
        /// A frame or body does not have the layout its command requires.
        case malformed
        /// A length field exceeds the allowed limit.
        case tooLarge
        /// The stream ended in the middle of a frame.
        case truncated
        /// A file ID or remote filename is not valid.
        case invalidFileID
        /// A group name is not `[A-Za-z0-9]{1,16}`.
        case invalidGroupName
        /// An extension or slave prefix has characters outside `[A-Za-z0-9_.-]` or is too long.
        case invalidName
        /// A metadata name or value contains a separator or exceeds its limit.
        case invalidMetadata
        /// A configuration file could not be read or has a bad line.
        case invalidConfig
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
