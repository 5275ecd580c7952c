import Foundation

/// A fresh temporary directory (`mkdtemp`), removed by ``remove()`` or when released.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(_ prefix: String = "fdfs-test") {
        let template = NSTemporaryDirectory() + "/\(prefix).XXXXXX"
        var bytes = Array(template.utf8CString)
        path = bytes.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    public var url: URL { URL(fileURLWithPath: path) }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }

    deinit { remove() }
}
