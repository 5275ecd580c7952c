#if canImport(Glibc)
import Glibc
#endif

/// A system call that failed on one of the two files.
struct CallError: Error, CustomStringConvertible {
    /// Which file: "mount" or "shadow".
    let side: String
    /// The call and its arguments, as a user would write them.
    let call: String
    let code: Int32

    var description: String { "\(side): \(call) failed: \(String(cString: strerror(code))) (errno \(code))" }
}

/// Why a run stopped.
enum FSXError: Error, CustomStringConvertible {
    /// Bad command-line arguments.
    case usage(String)
    /// The mount disagreed with the shadow file (content, size, or a call only one of them refused).
    case mismatch(step: Int, String)
    /// A call failed at `step` (0: before the first or after the last step).
    case call(step: Int, CallError)
    /// A `--hook` command failed.
    case hook(step: Int, String)

    var description: String {
        switch self {
        case let .usage(message): message
        case let .mismatch(step, message): "step \(step): MISMATCH: \(message)"
        case let .call(step, error): "step \(step): \(error)"
        case let .hook(step, message): "step \(step): hook failed: \(message)"
        }
    }

    var step: Int? {
        switch self {
        case .usage: nil
        case let .mismatch(step, _), let .call(step, _), let .hook(step, _): step
        }
    }
}
