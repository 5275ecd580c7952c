/// A FastDFS status byte: 0 for success, otherwise a **Linux** errno number.
///
/// The constants are the Linux values whatever the host system, because that is what real
/// servers put on the wire.
public struct FDFSStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let ok = FDFSStatus(rawValue: 0)
    public static let EPERM = FDFSStatus(rawValue: 1)
    public static let ENOENT = FDFSStatus(rawValue: 2)
    public static let EIO = FDFSStatus(rawValue: 5)
    public static let EAGAIN = FDFSStatus(rawValue: 11)
    public static let ENOMEM = FDFSStatus(rawValue: 12)
    public static let EACCES = FDFSStatus(rawValue: 13)
    public static let EBUSY = FDFSStatus(rawValue: 16)
    public static let EEXIST = FDFSStatus(rawValue: 17)
    public static let EISDIR = FDFSStatus(rawValue: 21)
    public static let EINVAL = FDFSStatus(rawValue: 22)
    public static let ENOSPC = FDFSStatus(rawValue: 28)
    public static let ENAMETOOLONG = FDFSStatus(rawValue: 36)
    public static let EOPNOTSUPP = FDFSStatus(rawValue: 95)
    public static let ETIMEDOUT = FDFSStatus(rawValue: 110)
    public static let EALREADY = FDFSStatus(rawValue: 114)

    /// The symbolic errno name, such as `ENOENT`, or `errno N` for values without a name here.
    public var name: String {
        switch rawValue {
        case 0: "OK"
        case 1: "EPERM"
        case 2: "ENOENT"
        case 5: "EIO"
        case 11: "EAGAIN"
        case 12: "ENOMEM"
        case 13: "EACCES"
        case 16: "EBUSY"
        case 17: "EEXIST"
        case 21: "EISDIR"
        case 22: "EINVAL"
        case 28: "ENOSPC"
        case 36: "ENAMETOOLONG"
        case 95: "EOPNOTSUPP"
        case 110: "ETIMEDOUT"
        case 114: "EALREADY"
        default: "errno \(rawValue)"
        }
    }

    public var description: String { name }
}
